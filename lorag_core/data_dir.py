"""Where lorag keeps its data (indexes, the adapter registry) unless a config says."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_DIR_ENV", "default_data_dir"]

DATA_DIR_ENV = "LORAG_DATA_DIR"


def default_data_dir() -> Path:
    """$LORAG_DATA_DIR, else ~/.local/share/lorag."""
    return Path(os.environ.get(DATA_DIR_ENV) or Path.home() / ".local" / "share" / "lorag")
