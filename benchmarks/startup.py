"""Start-up time: process spawn -> health endpoint answering 200, and -> first OTLP metrics export
carrying the heartbeat gauge.

The daemon exports to a local OTLP/HTTP sink with ``OTEL_METRIC_EXPORT_INTERVAL=1000`` (1 s; the
default is 15 s, which would dominate the figure: the first export happens one interval after the
reader starts). Each run starts on a fresh database, so start-up includes creating the schema
(migrations), and watches a small corpus (~1 MB).

Usage: ``python -m benchmarks.startup [--runs N]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mnemo_otel.telemetry import names
from testkit import free_port, http_get
from testkit.otlp_sink import OtlpSink, running_sink
from testkit.postgres_server import PostgresServer
from testkit.synthetic import write_corpus

from ._common import MB, base_env, create_database, median
from ._report import REPO, environment, format_table

__all__ = ("Startup", "main", "measure", "table")

EXPORT_INTERVAL_MS = 1000
TIMEOUT_SECONDS = 120.0


@dataclass
class Startup:
    runs: int
    health: list[float] = field(default_factory=list)
    heartbeat: list[float] = field(default_factory=list)


def measure(runs: int) -> Startup:
    result = Startup(runs=runs)
    with tempfile.TemporaryDirectory(prefix="mnemo-bench-startup-") as tmp:
        root = Path(tmp) / "projects"
        write_corpus(root, target_bytes=1 * MB, seed=17)
        server = PostgresServer()
        try:
            server.start()
            for run in range(runs):
                dsn = create_database(server, f"bench_startup_{run}")
                with running_sink() as sink:
                    health, beat = _once(dsn, root, sink, Path(tmp) / f"daemon-{run}.log")
                result.health.append(health)
                result.heartbeat.append(beat)
        finally:
            server.destroy()
    return result


def _once(dsn: str, root: Path, sink: OtlpSink, log_path: Path) -> tuple[float, float]:
    port = free_port()
    env = base_env(
        MNEMO_DATABASE_URL=dsn,
        MNEMO_HEALTH__PORT=str(port),
        OTEL_EXPORTER_OTLP_ENDPOINT=sink.url,
        OTEL_METRIC_EXPORT_INTERVAL=str(EXPORT_INTERVAL_MS),
    )
    health: float | None = None
    beat: float | None = None
    seen = 0
    with log_path.open("wb") as log:
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "mnemo_otel", "run", str(root)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            while health is None or beat is None:
                now = time.monotonic()
                if proc.poll() is not None:
                    raise RuntimeError(f"the daemon exited with {proc.returncode}; see {log_path}")
                if now - started > TIMEOUT_SECONDS:
                    raise RuntimeError(f"no heartbeat/health after {TIMEOUT_SECONDS:.0f} s; see {log_path}")
                if health is None:
                    try:
                        status, _ = http_get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    except OSError:
                        status = 0
                    if status == 200:
                        health = time.monotonic() - started
                if beat is None:
                    requests = list(sink.metrics)
                    if any(_has_heartbeat(r) for r in requests[seen:]):
                        beat = time.monotonic() - started
                    seen = len(requests)
                time.sleep(0.005)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert health is not None and beat is not None  # the loop above only ends with both
    return health, beat


def _has_heartbeat(request: object) -> bool:
    for rm in getattr(request, "resource_metrics", []):
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == names.HEARTBEAT.name:
                    return True
    return False


def table(r: Startup) -> str:
    rows = [
        (
            "spawn -> /healthz 200",
            f"{median(r.health):.2f}",
            f"{max(r.health):.2f}",
            ", ".join(f"{s:.2f}" for s in r.health),
        ),
        (
            f"spawn -> first metrics export with the heartbeat (interval {EXPORT_INTERVAL_MS} ms)",
            f"{median(r.heartbeat):.2f}",
            f"{max(r.heartbeat):.2f}",
            ", ".join(f"{s:.2f}" for s in r.heartbeat),
        ),
    ]
    return "\n".join(
        [
            (
                f"startup: {r.runs} runs, fresh database each (schema created at start-up), ~1 MB corpus; "
                "no goal set in the issue (figures for reference)"
            ),
            format_table(["startup", "median s", "max s", "runs s"], rows),
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="daemon starts (default 5)")
    args = parser.parse_args(argv)
    print(format_table(["", ""], environment()))
    print()
    print(table(measure(args.runs)))


if __name__ == "__main__":
    main()
