"""The sources' probe: every source pinged at start and then every interval, on a thread
of its own, so /readyz knows whether Vigil can see before (or without: `vigil serve`) any
cycle, and a slow source never delays a cycle or a request."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

from monitor.vigil import Vigil

log = logging.getLogger("vigil.daemon")


class SourceProber:
    def __init__(self, vigil: Callable[[], AbstractContextManager[Vigil]]) -> None:
        """`vigil()`: the current Vigil while the probe runs (a reload swaps it; its interval
        and sources apply; the old one's clients are not closed under a probe)."""
        self._vigil = vigil
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vigil-probe", daemon=True)

    def start(self) -> SourceProber:
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """A probe waiting on a source's timeout is not waited for: the thread is a daemon."""
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._vigil() as vigil:
                try:
                    vigil.probe_sources()
                except Exception:  # the next round tries again; /readyz shows what it last knew
                    log.exception("probing the sources failed")
            if self._stop.wait(vigil.config.schedule.interval):
                return
