"""Where a replica keeps parsed sample files and reference profiles (monitor/sources/spool.py)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from monitor.sources.spool import Spool


class SpoolConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # A local directory (not shared between machines); "" is <system temp>/vigil-spool-<uid>.
    # Use a persistent volume to keep the parsed inputs across restarts.
    directory: str = ""
    # Disk budget; past it the oldest entries go (and are re-parsed when next needed).
    max_gb: float = Field(16.0, gt=0)
    # false: parse into memory only (bounded, 512 MB), re-reading what does not fit.
    enabled: bool = True

    def open(self, base_dir: str = ".") -> Spool | None:
        if not self.enabled:
            return None
        directory = self.directory
        if directory and not directory.startswith("/"):
            directory = f"{base_dir}/{directory}"
        return Spool(directory or None, int(self.max_gb * 2**30))
