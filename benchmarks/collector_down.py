"""Telemetry with the collector down: exit delay, import speed and memory must not care.

0. Exit: ``mnemo-otel import`` of a small corpus from its last row committed to its exit, and
   ``mnemo-otel run`` from SIGTERM to its exit,
   with the endpoint on a closed 127.0.0.1 port, on a black hole (a listening socket that never
   answers) and with ``OTEL_SDK_DISABLED=true``; median seconds of ``--exit-runs`` alternating runs,
   and the delay over disabled (goal: within the 2 s shutdown grace).
1. Throughput: the same import (fresh database each, child processes, alternating, ``--runs`` each)
   with ``OTEL_EXPORTER_OTLP_ENDPOINT`` on a closed 127.0.0.1 port vs ``OTEL_SDK_DISABLED=true``;
   medians and their ratio (goal: <= 1.05, the telemetry overhead goal).
2. Memory: the ``mnemo-otel run`` daemon exporting to that closed port for ``--minutes`` while a
   writer appends lines; its RSS sampled every ``--every`` seconds: start (first sample once the
   initial corpus is imported), peak, end (goal: flat, i.e. the last minute's highest sample within
   5 MiB of the first minute's highest).

Usage: ``python -m benchmarks.collector_down [--exit-runs N] [--minutes N] [--mb N] [--runs N]``.
"""

from __future__ import annotations

import argparse
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import asyncpg
import psutil

from testkit import free_port
from testkit.null_receiver import running_null_receiver
from testkit.postgres_server import PostgresServer
from testkit.synthetic import session_lines, write_corpus

from ._common import MB, MIB, base_env, create_database, import_in_child, median, verdict
from ._report import REPO, environment, format_table

__all__ = ("DownFigures", "main", "measure", "table")

GOAL_RATIO = 1.05
FLAT_TOLERANCE_MIB = 5.0


@dataclass
class DownFigures:
    mb: float
    runs: int
    disabled_seconds: list[float] = field(default_factory=list)
    down_seconds: list[float] = field(default_factory=list)
    minutes: float = 0.0
    every: float = 0.0
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, rss bytes)
    warm_after: float = 0.0
    lines_appended: int = 0
    lines_stored: int = 0
    daemon_exit: int | None = None
    # (command, collector) -> seconds: import = spawn to exit, run = SIGTERM to exit
    exits: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    exit_codes: set[int] = field(default_factory=set)

    @property
    def ratio(self) -> float:
        return median(self.down_seconds) / median(self.disabled_seconds)


def measure(
    *, mb: float, runs: int, minutes: float, every: float, exit_runs: int = 5, seed: int = 5
) -> DownFigures:
    figures = DownFigures(mb=mb, runs=runs, minutes=minutes, every=every)
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there: every export fails
    with tempfile.TemporaryDirectory(prefix="mnemo-bench-down-") as tmp:
        root = Path(tmp) / "projects"
        write_corpus(root, target_bytes=int(mb * MB), seed=seed)
        server = PostgresServer()
        try:
            server.start()
            if exit_runs:
                _exits(server, Path(tmp), closed, figures, exit_runs, seed=seed)
            for run in range(runs):
                for mode in ("disabled", "down") if run % 2 == 0 else ("down", "disabled"):
                    dsn = create_database(server, f"bench_down_{mode}_{run}")
                    if mode == "disabled":
                        env = base_env(OTEL_SDK_DISABLED="true")
                        figures.disabled_seconds.append(
                            import_in_child(dsn, root, telemetry=True, env=env)["seconds"]
                        )
                    else:
                        env = base_env(OTEL_EXPORTER_OTLP_ENDPOINT=closed)
                        figures.down_seconds.append(
                            import_in_child(dsn, root, telemetry=True, env=env)["seconds"]
                        )
            if minutes > 0:
                _memory(server, Path(tmp), closed, figures, seed=seed)
        finally:
            server.destroy()
    return figures


def _exits(
    server: PostgresServer, tmp: Path, closed: str, figures: DownFigures, runs: int, *, seed: int
) -> None:
    """Seconds to exit, per command and collector state, alternating the states run by run."""
    root = tmp / "exit"
    write_corpus(root, target_bytes=MB, seed=seed + 2)
    with socket.socket() as hole, running_null_receiver() as receiver:  # hole: accepts, never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)
        states = {
            "disabled": {"OTEL_SDK_DISABLED": "true"},
            "receiver up": {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url},
            "closed port": {"OTEL_EXPORTER_OTLP_ENDPOINT": closed},
            "black hole": {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{hole.getsockname()[1]}"},
        }
        order = list(states)
        for run in range(runs):
            for state in order if run % 2 == 0 else order[::-1]:
                for command in ("import", "run"):
                    dsn = create_database(server, f"bench_exit_{command}_{state.replace(' ', '_')}_{run}")
                    env = base_env(MNEMO_DATABASE_URL=dsn, MNEMO_HEALTH__PORT="0", **states[state])
                    seconds, code = (_import_exit if command == "import" else _run_exit)(root, env, dsn, tmp)
                    figures.exits.setdefault((command, state), []).append(seconds)
                    figures.exit_codes.add(code)


def _import_exit(root: Path, env: dict[str, str], dsn: str, tmp: Path) -> tuple[float, int]:
    """Seconds from the last row committed (polled every 20 ms) to the process's exit: the time the
    exit waits once the work is done, start-up and import excluded."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnemo_otel", "import", str(root)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last_count, last_change = -1, time.monotonic()
    while proc.poll() is None:
        try:
            count = anyio.run(_count, dsn)
        except (OSError, asyncpg.PostgresError):
            count = 0
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        time.sleep(0.02)
    return time.monotonic() - last_change, proc.returncode


def _run_exit(root: Path, env: dict[str, str], dsn: str, tmp: Path) -> tuple[float, int]:
    """The daemon imports the corpus (and its telemetry queues fill), then SIGTERM: seconds to exit."""
    with (tmp / "exit-daemon.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mnemo_otel", "run", str(root)], cwd=REPO, env=env, stdout=log, stderr=log
        )
    try:
        _wait_stable(dsn, proc)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
        return time.monotonic() - started, code
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _memory(server: PostgresServer, tmp: Path, endpoint: str, figures: DownFigures, *, seed: int) -> None:
    """The daemon against a dead endpoint for ``minutes`` while lines keep arriving."""
    root = tmp / "live"
    write_corpus(root, target_bytes=2 * MB, seed=seed + 1)
    dsn = create_database(server, "bench_down_daemon")
    env = base_env(
        MNEMO_DATABASE_URL=dsn,
        MNEMO_HEALTH__PORT="0",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_METRIC_EXPORT_INTERVAL="1000",  # more failed exports per minute than the 15 s default
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_BLRP_SCHEDULE_DELAY="200",
    )
    stop = threading.Event()
    writer = threading.Thread(target=_write, args=(root, stop, figures, random.Random(seed)), daemon=True)
    log = (tmp / "daemon.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnemo_otel", "run", str(root)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        watched = psutil.Process(proc.pid)
        started = time.monotonic()
        figures.warm_after = _wait_for_rows(dsn, 1, proc) and time.monotonic() - started
        writer.start()
        deadline = started + figures.minutes * 60
        while time.monotonic() < deadline and proc.poll() is None:
            figures.samples.append((time.monotonic() - started, watched.memory_info().rss))
            time.sleep(figures.every)
        if proc.poll() is None:
            figures.samples.append((time.monotonic() - started, watched.memory_info().rss))
        stop.set()
        writer.join()
        time.sleep(3)  # the last appends' import
        figures.lines_stored = anyio.run(_count, dsn)
        figures.daemon_exit = proc.poll()
    finally:
        stop.set()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def _wait_stable(dsn: str, proc: subprocess.Popen[bytes]) -> None:
    """Until the corpus is in: rows present and their count unchanged for a second."""
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            count = anyio.run(_count, dsn)
        except (OSError, asyncpg.PostgresError):
            count = 0
        if count != last:
            last, since = count, time.monotonic()
        elif count > 0 and time.monotonic() - since >= 1.0:
            return
        time.sleep(0.1)
    raise RuntimeError("the daemon did not import its corpus")


def _write(root: Path, stop: threading.Event, figures: DownFigures, rng: random.Random) -> None:
    """About 20 lines a second across three live sessions, a new session file every minute."""
    project = next(p for p in sorted(root.iterdir()) if p.is_dir())
    opened = time.monotonic()
    while not stop.is_set():
        sessions = []
        for _ in range(3):
            session_id = str(uuid.UUID(int=rng.getrandbits(128)))
            sessions.append(
                (project / f"{session_id}.jsonl", session_lines(session_id, turns=10_000, rng=rng))
            )
        opened = time.monotonic()
        while not stop.is_set() and time.monotonic() - opened < 60:
            path, lines = rng.choice(sessions)
            with path.open("ab") as f:
                f.write(next(lines))
            figures.lines_appended += 1
            time.sleep(0.05)


def _wait_for_rows(dsn: str, minimum: int, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if anyio.run(_count, dsn) >= minimum:
                return True
        except (OSError, asyncpg.PostgresError):
            pass
        time.sleep(0.5)
    raise RuntimeError("the daemon did not import its corpus")


async def _count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        value: int = await conn.fetchval("SELECT count(*) FROM mnemo.entries")
        return value
    finally:
        await conn.close()


def table(f: DownFigures) -> str:
    parts: list[str] = []
    if f.exits:
        parts.extend(_exit_table(f))
    if f.runs:
        parts.extend(_throughput(f))
    if f.samples:
        parts.extend(_memory_table(f))
    return "\n".join(parts)


def _exit_table(f: DownFigures) -> list[str]:
    rows = []
    for command, label in (("import", "import (last row -> exit)"), ("run", "run (SIGTERM -> exit)")):
        up = median(f.exits[(command, "receiver up")])
        for state in ("disabled", "receiver up", "closed port", "black hole"):
            runs = f.exits[(command, state)]
            rows.append(
                (
                    label,
                    state,
                    f"{median(runs):.2f}",
                    ", ".join(f"{s:.2f}" for s in runs),
                    f"{median(runs) - up:+.2f}" if state in ("closed port", "black hole") else "-",
                )
            )
    return [
        (
            f"exit with the collector down: 1 MB corpus, {len(f.exits[('import', 'disabled')])} runs each, "
            f"alternating; exit codes seen: {sorted(f.exit_codes)}"
        ),
        format_table(["command", "collector", "median s", "runs s", "delay vs receiver up s"], rows),
        "",
    ]


def _throughput(f: DownFigures) -> list[str]:
    parts: list[str] = []
    rows = [
        (
            "OTEL_SDK_DISABLED=true",
            f"{median(f.disabled_seconds):.2f}",
            ", ".join(f"{s:.2f}" for s in f.disabled_seconds),
        ),
        (
            "endpoint = closed port",
            f"{median(f.down_seconds):.2f}",
            ", ".join(f"{s:.2f}" for s in f.down_seconds),
        ),
    ]
    parts.append(
        f"collector_down throughput: {f.mb:.0f} MB corpus, {f.runs} runs each, alternating, fresh database each"
    )
    parts.append(format_table(["telemetry", "median s", "runs s"], rows))
    parts.append(
        f"ratio down / disabled: {f.ratio:.3f} (goal <= {GOAL_RATIO:.2f}: {verdict(f.ratio <= GOAL_RATIO)})"
    )
    return parts


def _memory_table(f: DownFigures) -> list[str]:
    parts: list[str] = []
    if f.samples:
        warm = [s for s in f.samples if s[0] >= f.warm_after] or f.samples
        first_minute = [rss for t, rss in warm if t <= warm[0][0] + 60]
        last_minute = [rss for t, rss in warm if t >= warm[-1][0] - 60]
        growth = (max(last_minute) - max(first_minute)) / MIB
        peak = max(rss for _, rss in warm)
        rows = [
            (
                f"{f.minutes:g} min, every {f.every:g} s ({len(f.samples)} samples)",
                f"{warm[0][1] / MIB:.1f}",
                f"{peak / MIB:.1f}",
                f"{warm[-1][1] / MIB:.1f}",
                f"{growth:+.1f}",
                f"flat (<= {FLAT_TOLERANCE_MIB:g} MiB): {verdict(growth <= FLAT_TOLERANCE_MIB)}",
            )
        ]
        parts.append("")
        parts.append(
            format_table(
                [
                    "daemon RSS, collector down",
                    "start MiB",
                    "peak MiB",
                    "end MiB",
                    "last - first minute",
                    "goal",
                ],
                rows,
            )
        )
        parts.append(
            f"{f.lines_appended:,} lines appended meanwhile; {f.lines_stored:,} rows in the database at the end "
            f"(incl. the 2 MB starting corpus); daemon {'still running' if f.daemon_exit is None else f'EXITED {f.daemon_exit}'}; "
            "metric export every 1 s, span/log batches every 200 ms, all to a closed port"
        )
        parts.append(
            "RSS trace (min: MiB): "
            + ", ".join(
                f"{t / 60:.1f}: {rss / MIB:.0f}" for t, rss in f.samples[:: max(1, len(f.samples) // 20)]
            )
        )
    return parts


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collector_down", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10, help="daemon RSS duration (default 10; 0 skips)")
    parser.add_argument("--every", type=float, default=5, help="RSS sample period in seconds (default 5)")
    parser.add_argument("--mb", type=float, default=20, help="throughput corpus in MB (default 20)")
    parser.add_argument("--runs", type=int, default=3, help="imports per mode (default 3; 0 skips)")
    parser.add_argument(
        "--exit-runs", type=int, default=5, help="exit timings per state (default 5; 0 skips)"
    )
    args = parser.parse_args(argv)
    print(format_table(["", ""], environment()))
    print()
    figures = measure(
        mb=args.mb, runs=args.runs, minutes=args.minutes, every=args.every, exit_runs=args.exit_runs
    )
    print(table(figures))


if __name__ == "__main__":
    main()
