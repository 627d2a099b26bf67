"""Running the real daemon as a subprocess that exports to a test OTLP sink."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from testkit.importing import clean_env
from testkit.otlp_sink import OtlpSink, attributes


def daemon_env(database_url: str, otlp_url: str | None, **extra: str) -> dict[str, str]:
    env = clean_env()
    env.update(
        {
            "MNEMO_DATABASE_URL": database_url,
            "MNEMO_HEALTH__PORT": "0",
            "MNEMO_IMPORTS__IDLE_BEAT_SECONDS": "0.2",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_BLRP_SCHEDULE_DELAY": "200",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
        }
    )
    if otlp_url is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp_url
    env.update(extra)
    return env


@contextmanager
def running_daemon(roots: Path, env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mnemo_otel", "run", str(roots)],
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def metric_points(sink: OtlpSink, name: str) -> list[tuple[dict[str, Any], Any]]:
    """(resource attributes, data point) for every point of ``name`` received so far, in order."""
    found = []
    for request in list(sink.metrics):
        for rm in request.resource_metrics:
            resource = attributes(rm.resource.attributes)
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name != name:
                        continue
                    kind = metric.WhichOneof("data")
                    assert kind is not None
                    for point in getattr(metric, kind).data_points:
                        found.append((resource, point))
    return found


def metric_units(sink: OtlpSink) -> dict[str, set[str]]:
    units: dict[str, set[str]] = {}
    for request in list(sink.metrics):
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    units.setdefault(metric.name, set()).add(f"{metric.unit}|{metric.WhichOneof('data')}")
    return units


def exported_bytes(sink: OtlpSink) -> list[bytes]:
    """Every request the sink decoded, serialised again: what went over the wire."""
    requests: list[Any] = [*sink.traces, *sink.logs, *sink.metrics]
    return [r.SerializeToString() for r in requests]
