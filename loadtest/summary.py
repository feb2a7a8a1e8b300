"""The run's summary: requests/s, output tokens/s, TTFT and inter-token latency
percentiles and the error rate, per route and overall, from locust's request events.

Locust rounds response times above 100 ms to two significant digits for its own
percentiles; the summary keeps every sample instead. Pure (no locust import):
`Collector.on_request` has the signature of locust's `events.request` listeners.

Event conventions (loadtest/locustfile.py fires them):

- a generation request: `context={"route": R, "kind": K}`, its response time
  is the whole request (sent -> last byte);
- `request_type` "TTFT" / "ITL" / "TOKENS", `name` R: one each per streamed
  answer (time to first token, the answer's mean gap, its output tokens), with
  every gap in `context["gaps_ms"]`;
- admin operations: `context={"route": "admin"}`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

METRIC_TYPES = ("TTFT", "ITL", "TOKENS")
ADMIN = "admin"


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None if empty.

    >>> percentile([1, 2, 3, 4], 50)
    2.5
    """
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class RouteSamples:
    requests: int = 0
    failures: int = 0
    latency_ms: list[float] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    itl_ms: list[float] = field(default_factory=list)
    output_tokens: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    operations: dict[str, list[int]] = field(default_factory=dict)  # name -> [n, failed]


class Collector:
    """Listens to locust's request events; `reset()` starts the measured window."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.routes: dict[str, RouteSamples] = {}
        self.started = clock()
        self.stopped: float | None = None

    def reset(self) -> None:
        self.routes.clear()
        self.started, self.stopped = self.clock(), None

    def stop(self) -> None:
        """End of the measured window: later events (users being stopped) are ignored."""
        if self.stopped is None:
            self.stopped = self.clock()

    def on_request(self, request_type: str, name: str, response_time: float,
                   response_length: int, exception: Any = None,
                   context: dict | None = None, **_: Any) -> None:
        if self.stopped is not None:
            return
        context = context or {}
        if request_type in METRIC_TYPES:
            samples = self.routes.setdefault(name, RouteSamples())
            if request_type == "TTFT":
                samples.ttft_ms.append(response_time)
            elif request_type == "ITL":
                samples.itl_ms.extend(context.get("gaps_ms", [response_time]))
            else:
                samples.output_tokens += int(response_length)
            return
        route = context.get("route")
        if route is None:
            return  # not a request of this suite
        samples = self.routes.setdefault(route, RouteSamples())
        samples.requests += 1
        samples.latency_ms.append(response_time)
        if exception is not None:
            samples.failures += 1
            key = str(exception).splitlines()[0][:160] if str(exception) else type(
                exception).__name__
            samples.errors[key] = samples.errors.get(key, 0) + 1
        if route == ADMIN:
            op = samples.operations.setdefault(name, [0, 0])
            op[0] += 1
            op[1] += exception is not None

    def summary(self, **run_info: Any) -> dict[str, Any]:
        return summarize(self.routes, (self.stopped or self.clock()) - self.started, **run_info)


def _figures(s: RouteSamples, duration_s: float) -> dict[str, Any]:
    def stats(values: list[float]) -> dict[str, float | None]:
        return {"p50": _round(percentile(values, 50)), "p99": _round(percentile(values, 99)),
                "mean": _round(sum(values) / len(values)) if values else None}

    return {
        "requests": s.requests, "failures": s.failures,
        "error_rate": round(s.failures / s.requests, 4) if s.requests else 0.0,
        "requests_per_s": round(s.requests / duration_s, 3) if duration_s else 0.0,
        "output_tokens": s.output_tokens,
        "output_tokens_per_s": round(s.output_tokens / duration_s, 2) if duration_s else 0.0,
        "ttft_ms": stats(s.ttft_ms), "itl_ms": stats(s.itl_ms),
        "latency_ms": stats(s.latency_ms),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def summarize(routes: dict[str, RouteSamples], duration_s: float,
              **run_info: Any) -> dict[str, Any]:
    """Per route and overall (generation routes); admin apart; `error_rate` counts all."""
    overall = RouteSamples()
    per_route = {}
    for name, s in sorted(routes.items()):
        if name == ADMIN:
            continue
        per_route[name] = {**_figures(s, duration_s), "errors": dict(s.errors)}
        for attr in ("requests", "failures", "output_tokens"):
            setattr(overall, attr, getattr(overall, attr) + getattr(s, attr))
        for attr in ("latency_ms", "ttft_ms", "itl_ms"):
            getattr(overall, attr).extend(getattr(s, attr))
    admin = routes.get(ADMIN, RouteSamples())
    total = overall.requests + admin.requests
    failed = overall.failures + admin.failures
    return {
        **run_info,
        "duration_s": round(duration_s, 2),
        "overall": _figures(overall, duration_s),
        "routes": per_route,
        "admin": {"requests": admin.requests, "failures": admin.failures,
                  "operations": {k: {"requests": n, "failures": f}
                                 for k, (n, f) in sorted(admin.operations.items())},
                  "errors": dict(admin.errors)},
        "requests": total, "failures": failed,
        "error_rate": round(failed / total, 4) if total else 0.0,
    }


def format_table(summary: dict[str, Any]) -> str:
    """The summary as a fixed-width table for the terminal."""
    head = (f"{'route':<12}{'req':>6}{'fail':>6}{'req/s':>8}{'tok/s':>8}"
            f"{'TTFT p50':>10}{'p99':>8}{'ITL p50':>9}{'p99':>8}  (ms)")
    rows = [head]
    for name, r in [*summary["routes"].items(), ("overall", summary["overall"])]:
        rows.append(f"{name:<12}{r['requests']:>6}{r['failures']:>6}{r['requests_per_s']:>8.2f}"
                    f"{r['output_tokens_per_s']:>8.1f}{_fmt(r['ttft_ms']['p50']):>10}"
                    f"{_fmt(r['ttft_ms']['p99']):>8}{_fmt(r['itl_ms']['p50']):>9}"
                    f"{_fmt(r['itl_ms']['p99']):>8}")
    admin = summary["admin"]
    rows.append(f"admin: {admin['requests']} requests, {admin['failures']} failed; "
                f"error rate {summary['error_rate']:.2%} over {summary['requests']} requests")
    return "\n".join(rows)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
