"""Telemetry overhead: telemetry on vs ``OTEL_SDK_DISABLED=true`` (goal: <= 5 % wall, <= 10 % CPU).

Two workloads, each as pairs of runs in alternating order (on/off, then off/on, ...), each run in its
own process on a fresh database of one server; the figure is the median of the per-pair ratios, the
spread of those ratios is the noise:

- bulk catch-up: one ``import_once`` of a generated corpus (``benchmarks._import_child --telemetry``,
  the SDK configured by ``configure_telemetry`` as in the CLI); wall and CPU seconds of the import.
- daemon: ``mnemo-otel run`` on a small imported corpus while a writer appends lines at a steady rate
  to a few live sessions; the daemon's CPU seconds from the first append to the last row committed.

With telemetry on, everything is exported over OTLP/HTTP to a receiver that does nothing (reads the
request, answers 200; ``--target null``, the default): the figure is our cost, not a collector's. The
decoding test sink and the real collector stay available as targets.

Usage: ``python -m benchmarks.telemetry_overhead [--mb N] [--runs N] [--daemon-lines N]
[--target null|sink|collector]``.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from testkit.null_receiver import running_null_receiver
from testkit.otlp_sink import running_sink
from testkit.postgres_server import PostgresServer
from testkit.sql import scalar_or
from testkit.stack import running_backends
from testkit.synthetic import session_lines, write_corpus

from ._common import MB, base_env, create_database, import_in_child, median, verdict
from ._report import REPO, environment, format_table

__all__ = ("Overhead", "main", "measure", "table")

GOAL_WALL = 1.05
GOAL_CPU = 1.10


@dataclass
class Pair:
    on: float
    off: float

    @property
    def ratio(self) -> float:
        return self.on / self.off


@dataclass
class Overhead:
    mb: float
    target: str
    entries: int = 0
    wall: list[Pair] = field(default_factory=list)
    cpu: list[Pair] = field(default_factory=list)
    daemon_cpu: list[Pair] = field(default_factory=list)
    daemon_wall: list[Pair] = field(default_factory=list)
    daemon_lines: int = 0
    spans_dropped: int = 0
    spans_ended: int = 0


@contextlib.contextmanager
def _endpoint(target: str, workdir: Path) -> Iterator[str]:
    if target == "null":
        with running_null_receiver() as receiver:
            yield receiver.url
    elif target == "sink":
        with running_sink() as sink:
            yield sink.url
    else:
        with running_backends(workdir) as backends:
            yield backends.collector.otlp_http_url


def measure(
    mb: float, *, runs: int = 5, target: str = "null", daemon_lines: int = 1500, seed: int = 3
) -> Overhead:
    result = Overhead(mb=mb, target=target, daemon_lines=daemon_lines)
    with tempfile.TemporaryDirectory(prefix="mnemo-bench-otel-") as tmp:
        root = Path(tmp) / "projects"
        write_corpus(root, target_bytes=int(mb * MB), seed=seed)
        server = PostgresServer()
        try:
            server.start()
            with _endpoint(target, Path(tmp)) as endpoint:
                for run in range(runs):
                    figures: dict[str, dict[str, float]] = {}
                    for mode in ("on", "off") if run % 2 == 0 else ("off", "on"):
                        figures[mode] = _bulk(server, root, endpoint if mode == "on" else None, run)
                    result.wall.append(Pair(figures["on"]["seconds"], figures["off"]["seconds"]))
                    result.cpu.append(Pair(figures["on"]["cpu_seconds"], figures["off"]["cpu_seconds"]))
                    result.entries = int(figures["on"]["entries"])
                    result.spans_dropped += int(figures["on"]["spans_dropped"])
                    result.spans_ended += int(figures["on"]["spans_ended"])
                for run in range(runs if daemon_lines else 0):
                    daemon: dict[str, tuple[float, float]] = {}
                    for mode in ("on", "off") if run % 2 == 0 else ("off", "on"):
                        daemon[mode] = _daemon(
                            server, Path(tmp), endpoint if mode == "on" else None, daemon_lines, run
                        )
                    result.daemon_cpu.append(Pair(daemon["on"][0], daemon["off"][0]))
                    result.daemon_wall.append(Pair(daemon["on"][1], daemon["off"][1]))
        finally:
            server.destroy()
    return result


def _bulk(server: PostgresServer, root: Path, endpoint: str | None, run: int) -> dict[str, float]:
    mode = "on" if endpoint else "off"
    dsn = create_database(server, f"bench_otel_{mode}_{run}")
    env = base_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint) if endpoint else base_env(OTEL_SDK_DISABLED="true")
    figures = import_in_child(dsn, root, telemetry=True, env=env)
    if int(figures.get("telemetry_enabled", 0)) != (endpoint is not None):
        raise RuntimeError(f"telemetry mode {mode} did not take effect: {figures}")
    return figures


def _daemon(
    server: PostgresServer, tmp: Path, endpoint: str | None, lines: int, run: int
) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of the daemon from the first append to the last row committed."""
    mode = "on" if endpoint else "off"
    root = tmp / f"live-{mode}-{run}"
    write_corpus(root, target_bytes=MB, seed=100 + run)
    dsn = create_database(server, f"bench_otel_daemon_{mode}_{run}")
    extra = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint} if endpoint else {"OTEL_SDK_DISABLED": "true"}
    env = base_env(MNEMO_DATABASE_URL=dsn, MNEMO_HEALTH__PORT="0", **extra)
    log = (tmp / f"daemon-{mode}-{run}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnemo_otel", "run", str(root)], cwd=REPO, env=env, stdout=log, stderr=log
    )
    try:
        initial = _wait_stable(dsn, proc)
        watched = psutil.Process(proc.pid)
        cpu_before = sum(watched.cpu_times()[:2])
        started = time.monotonic()
        writer = threading.Thread(target=_append, args=(root, lines, random.Random(run)))
        writer.start()
        writer.join()
        _wait_rows(dsn, initial + lines, proc)
        wall = time.monotonic() - started
        cpu = sum(watched.cpu_times()[:2]) - cpu_before
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return cpu, wall


def _append(root: Path, lines: int, rng: random.Random) -> None:
    """``lines`` lines at about 100 a second, spread over four live sessions."""
    project = next(p for p in sorted(root.iterdir()) if p.is_dir())
    sessions = []
    for _ in range(4):
        session_id = str(uuid.UUID(int=rng.getrandbits(128)))
        sessions.append((project / f"{session_id}.jsonl", session_lines(session_id, turns=10_000, rng=rng)))
    for _ in range(lines):
        path, source = rng.choice(sessions)
        with path.open("ab") as f:
            f.write(next(source))
        time.sleep(0.01)


def _wait_stable(dsn: str, proc: subprocess.Popen[bytes]) -> int:
    """Rows once the starting corpus is in (the count unchanged for a second)."""
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        count = scalar_or(0, dsn, "SELECT count(*) FROM mnemo.entries")
        if count != last:
            last, since = count, time.monotonic()
        elif count > 0 and time.monotonic() - since >= 1.0:
            return count
        time.sleep(0.1)
    raise RuntimeError("the daemon did not import its starting corpus")


def _wait_rows(dsn: str, minimum: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if scalar_or(0, dsn, "SELECT count(*) FROM mnemo.entries") >= minimum:
            return
        time.sleep(0.02)
    raise RuntimeError("the daemon did not import the appended lines")


def _row(label: str, pairs: list[Pair], goal: float) -> tuple[str, ...]:
    ratios = sorted(p.ratio for p in pairs)
    med = median(ratios)
    return (
        label,
        f"{median([p.on for p in pairs]):.2f}",
        f"{median([p.off for p in pairs]):.2f}",
        f"{med:.3f} ({(med - 1) * 100:+.1f} %)",
        f"{ratios[0]:.2f}-{ratios[-1]:.2f}",
        f"<= {goal:.2f}: {verdict(med <= goal)}",
    )


def table(r: Overhead) -> str:
    rows = [
        _row("bulk catch-up, wall s", r.wall, GOAL_WALL),
        _row("bulk catch-up, CPU s", r.cpu, GOAL_CPU),
    ]
    if r.daemon_cpu:
        rows.append(_row(f"daemon, {r.daemon_lines} appends, CPU s", r.daemon_cpu, GOAL_CPU))
        rows.append(_row(f"daemon, {r.daemon_lines} appends, wall s (paced)", r.daemon_wall, GOAL_WALL))
    headers = [
        "telemetry_overhead",
        "on (median)",
        "off (median)",
        "median of pair ratios",
        "ratio range",
        "goal",
    ]
    return "\n".join(
        [
            (
                f"telemetry_overhead: {r.mb:.0f} MB corpus, {r.entries:,} entries, {len(r.wall)} pairs "
                f"(alternating order), each run in its own process on a fresh database; on = OTLP/HTTP "
                f"to the {r.target} receiver"
            ),
            format_table(headers, rows),
            f"spans dropped by a full queue over all bulk runs: {r.spans_dropped} of {r.spans_ended}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.telemetry_overhead", description=__doc__)
    parser.add_argument("--mb", type=float, default=30, help="bulk corpus size in MB (default 30)")
    parser.add_argument("--runs", type=int, default=5, help="pairs per workload (default 5)")
    parser.add_argument("--daemon-lines", type=int, default=1500, help="daemon appends per run (0 skips)")
    parser.add_argument("--target", choices=["null", "sink", "collector"], default="null")
    args = parser.parse_args(argv)
    print(format_table(["", ""], environment()))
    print()
    print(table(measure(args.mb, runs=args.runs, target=args.target, daemon_lines=args.daemon_lines)))


if __name__ == "__main__":
    main()
