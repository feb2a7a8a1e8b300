"""Free TCP ports, for local servers started next to others (tests, benchmarks, eval)."""

from __future__ import annotations

import socket


__all__ = ["free_port", "port_free"]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS's pick); `host=""` checks every interface."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_free(port: int, host: str = "") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True
