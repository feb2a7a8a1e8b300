"""Where lorag keeps its data (indexes, the adapter registry) unless a config says."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_DIR_ENV", "REPLICA_DIR_ENV", "default_data_dir", "replica_dir"]

DATA_DIR_ENV = "LORAG_DATA_DIR"
REPLICA_DIR_ENV = "LORAG_REPLICA_DIR"


def default_data_dir() -> Path:
    """$LORAG_DATA_DIR, else ~/.local/share/lorag."""
    return Path(os.environ.get(DATA_DIR_ENV) or Path.home() / ".local" / "share" / "lorag")


def replica_dir(configured: str | None, data_dir: str | None) -> Path:
    """Where retrieval copies live on this node (`retrieval.replica_dir`): the configured
    folder, else $LORAG_REPLICA_DIR, else <data_dir>/replicas."""
    if configured:
        return Path(configured)
    if os.environ.get(REPLICA_DIR_ENV):
        return Path(os.environ[REPLICA_DIR_ENV])
    return (Path(data_dir) if data_dir else default_data_dir()) / "replicas"
