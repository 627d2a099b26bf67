"""The real OpenTelemetry Collector, built from collector/manifest.yaml, running the SHIPPED config.

The config is never copied or edited: only environment variables move its endpoints onto free
127.0.0.1 ports and point its exporters at test backends, exactly as docker compose would set them.
Ports are chosen once per :class:`Collector`, so a restart comes back on the same addresses (the
importer keeps exporting to the same endpoint across a collector outage).
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from testkit import REPO_ROOT, free_port, http_get, log_tail, spawn, stop_process, wait_for

__all__ = (
    "BUILD_SCRIPT",
    "SHIPPED_CONFIG",
    "Collector",
    "collector_binary",
    "running_collector",
)

SHIPPED_CONFIG = REPO_ROOT / "collector" / "config.yaml"
BUILD_SCRIPT = REPO_ROOT / "collector" / "build.sh"


@functools.cache
def collector_binary() -> Path:
    """Path of the built collector; builds it on first use (cached by manifest hash by build.sh)."""
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], cwd=REPO_ROOT, check=True, capture_output=True, text=True
    )
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"collector/build.sh printed no binary path; stderr:\n{result.stderr}")
    binary = Path(lines[-1])
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"collector/build.sh printed {binary}, which is not an executable")
    return binary


class Collector:
    """One collector process with fixed ports; start/stop/restart it as often as a test needs."""

    def __init__(
        self,
        *,
        remote_write_url: str,
        tempo_url: str,
        loki_url: str,
        log_path: Path,
        config: Path = SHIPPED_CONFIG,
        metrics_port: int | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.binary = collector_binary()
        self.config = config
        self.log_path = log_path
        self.otlp_grpc_port = free_port()
        self.otlp_http_port = free_port()
        self.health_port = free_port()
        self.metrics_port = metrics_port or free_port()
        self.env: dict[str, str] = {
            "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{self.otlp_grpc_port}",
            "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{self.otlp_http_port}",
            "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{self.health_port}",
            "OTELCOL_METRICS_HOST": "127.0.0.1",
            "OTELCOL_METRICS_PORT": str(self.metrics_port),
            "PROMETHEUS_REMOTE_WRITE_ENDPOINT": remote_write_url,
            "TEMPO_OTLP_HTTP_ENDPOINT": tempo_url,
            "LOKI_OTLP_ENDPOINT": loki_url,
            **(extra_env or {}),
        }
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def otlp_http_url(self) -> str:
        """Base URL for OTLP/HTTP senders (``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
        return f"http://127.0.0.1:{self.otlp_http_port}"

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.otlp_grpc_port}"

    @property
    def metrics_target(self) -> str:
        """host:port of the collector's own /metrics (otelcol_*), for a Prometheus scrape job."""
        return f"127.0.0.1:{self.metrics_port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start the process and wait until health_check reports it ready."""
        if self.running:
            return
        env = {**os.environ, **self.env}
        with self.log_path.open("ab") as log:
            self._proc = spawn(
                [str(self.binary), f"--config=file:{self.config}"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_for(
            self._healthy,
            timeout=timeout,
            what=f"collector health_check on 127.0.0.1:{self.health_port}",
            diagnostics=lambda: log_tail(self.log_path),
        )

    def _healthy(self) -> bool:
        if self._proc is None or self._proc.poll() is not None:
            raise AssertionError(f"collector exited early:\n{log_tail(self.log_path)}")
        status, _ = http_get(f"http://127.0.0.1:{self.health_port}/", timeout=2)
        return status == 200

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful stop (SIGTERM: the collector flushes its queues), then wait for the exit."""
        if self._proc is not None:
            stop_process(self._proc, timeout=timeout)
            self._proc = None

    def restart(self, timeout: float = 30.0) -> None:
        self.stop()
        self.start(timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def running_collector(
    workdir: Path,
    *,
    remote_write_url: str,
    tempo_url: str,
    loki_url: str,
    metrics_port: int | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Collector]:
    """A started collector running the shipped config, stopped on exit whatever happens.

    Pass ``metrics_port`` (e.g. :func:`testkit.free_port`) when a Prometheus started before
    the collector must scrape the collector's own metrics.
    """
    collector = Collector(
        remote_write_url=remote_write_url,
        tempo_url=tempo_url,
        loki_url=loki_url,
        log_path=workdir / "otelcol.log",
        metrics_port=metrics_port,
        extra_env=extra_env,
    )
    try:
        collector.start()
        yield collector
    finally:
        collector.stop()
