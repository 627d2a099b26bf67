"""The collector gateway of the team deployment: the shipped config plus collector/gateway-tls.yaml,
run by the real collector, accepts an importer's telemetry over TLS (OTEL_EXPORTER_OTLP_CERTIFICATE)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testkit import REPO_ROOT, free_port, http_get, log_tail, stop_process, wait_for
from testkit.collector import SHIPPED_CONFIG, collector_binary
from testkit.importing import clean_env, entry
from testkit.tls import make_authority

OVERLAY = REPO_ROOT / "collector" / "gateway-tls.yaml"
_ACCEPTED = re.compile(
    r'^otelcol_receiver_accepted_metric_points_total\{[^}]*transport="http"[^}]*\} (\S+)$', re.MULTILINE
)

pytestmark = pytest.mark.timeout(300)


def test_gateway__accepts_otlp_over_tls_from_an_importer(
    database_url: str, transcripts: Path, tmp_path: Path
) -> None:
    certs = make_authority(tmp_path / "certs", "gateway")
    http_port, metrics_port, health_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
        "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{http_port}",
        "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{health_port}",
        "OTELCOL_METRICS_HOST": "127.0.0.1",
        "OTELCOL_METRICS_PORT": str(metrics_port),
        "PROMETHEUS_REMOTE_WRITE_ENDPOINT": f"http://127.0.0.1:{free_port()}/api/v1/write",
        "TEMPO_OTLP_HTTP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "LOKI_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}/otlp",
        "OTELCOL_TLS_CERT_FILE": str(certs.cert),
        "OTELCOL_TLS_KEY_FILE": str(certs.key),
    }
    log = tmp_path / "collector.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(collector_binary()), f"--config=file:{SHIPPED_CONFIG}", f"--config=file:{OVERLAY}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: _status(f"http://127.0.0.1:{health_port}/") == 200,
            timeout=60,
            what="collector health",
            diagnostics=lambda: log_tail(log),
        )
        (transcripts / "s.jsonl").write_bytes(entry("a"))
        importer = subprocess.Popen(
            [sys.executable, "-m", "mnemo_otel", "run", str(transcripts)],
            env=clean_env(
                MNEMO_DATABASE_URL=database_url,
                MNEMO_HEALTH__PORT="0",
                OTEL_METRIC_EXPORT_INTERVAL="1000",
                OTEL_EXPORTER_OTLP_ENDPOINT=f"https://127.0.0.1:{http_port}",
                OTEL_EXPORTER_OTLP_CERTIFICATE=str(certs.ca),
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(
                lambda: _accepted(metrics_port) > 0,
                timeout=120,
                what="metric points accepted over TLS",
                diagnostics=lambda: log_tail(log),
            )
        finally:
            stop_process(importer)
    finally:
        stop_process(proc)


def _status(url: str) -> int:
    try:
        return http_get(url)[0]
    except OSError:
        return 0


def _accepted(port: int) -> float:
    try:
        _, body = http_get(f"http://127.0.0.1:{port}/metrics")
    except OSError:
        return 0.0
    return sum(float(v) for v in _ACCEPTED.findall(body.decode() if isinstance(body, bytes) else body))
