"""Vigil's version as installed (`vigil --version`, the start-up line, vigil_build_info)."""
from __future__ import annotations

import importlib.metadata


def vigil_version() -> str:
    try:
        return importlib.metadata.version("vigil")
    except importlib.metadata.PackageNotFoundError:  # a source tree that is not installed
        return "unknown"
