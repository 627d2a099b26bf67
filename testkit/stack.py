"""The monitoring stack minus Grafana, on 127.0.0.1: two OTLP sinks (Tempo, Loki), Prometheus, and
the built collector running the shipped config wired to them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import free_port
from .collector import Collector, running_collector
from .otlp_sink import OtlpSink, running_sink
from .prometheus import Prometheus, running_prometheus


@dataclass
class Backends:
    prometheus: Prometheus
    tempo: OtlpSink
    loki: OtlpSink
    collector: Collector


@contextlib.contextmanager
def running_backends(workdir: Path) -> Iterator[Backends]:
    # Prometheus must know the collector's own metrics port before the collector exists.
    metrics_port = free_port()
    with (
        running_sink() as tempo,
        running_sink() as loki,
        running_prometheus(
            workdir / "prometheus",
            scrape_targets={"otelcol": [f"127.0.0.1:{metrics_port}"]},
            scrape_interval="1s",
        ) as prometheus,
        running_collector(
            workdir,
            remote_write_url=prometheus.remote_write_url,
            tempo_url=tempo.url,
            loki_url=f"{loki.url}/otlp",
            metrics_port=metrics_port,
        ) as collector,
    ):
        yield Backends(prometheus, tempo, loki, collector)
