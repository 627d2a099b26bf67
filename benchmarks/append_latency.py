"""Append -> commit latency while the daemon runs (goal: p99 <= 1 s).

The real ``mnemo-otel run`` daemon (telemetry on, exporting to a local OTLP sink, default settings)
watches a small, already imported corpus. A writer appends ``--appends`` lines, each with a unique
uuid, spaced 50-200 ms at random, across four transcripts (two existing, two created during the run),
and notes the wall-clock time right after each ``write()``. Two latencies per line, same machine clock:

- commit: ``mnemo.entries.imported_at`` minus the append time. ``imported_at`` is ``now()`` in the
  import transaction, i.e. its start: this slightly under-states the commit by the batch's own time.
- visible: when a poller (every 10 ms, separate connection) first saw the row, minus the append time:
  an upper bound (commit + up to one poll). The goal is judged on this one.

Usage: ``python -m benchmarks.append_latency [--appends N]``.
"""

from __future__ import annotations

import argparse
import random
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

from testkit.otlp_sink import running_sink
from testkit.postgres_server import PostgresServer
from testkit.synthetic import line, write_corpus

from ._common import MB, base_env, create_database, verdict
from ._report import REPO, environment, format_table

__all__ = ("Latency", "main", "measure", "table")

GOAL_P99_SECONDS = 1.0
POLL_SECONDS = 0.01


@dataclass
class Latency:
    appends: int
    appended: dict[str, float] = field(default_factory=dict)  # key -> wall time after write()
    committed: dict[str, float] = field(default_factory=dict)  # key -> imported_at
    visible: dict[str, float] = field(default_factory=dict)  # key -> first seen by the poller
    daemon_log: str = ""  # what the daemon logged during the run (benchmarks.verify counts scrubs in it)

    def commit_latencies(self) -> list[float]:
        return sorted(self.committed[k] - t for k, t in self.appended.items() if k in self.committed)

    def visible_latencies(self) -> list[float]:
        return sorted(self.visible[k] - t for k, t in self.appended.items() if k in self.visible)


def measure(
    appends: int, *, seed: int = 13, corpus_mb: float = 1.0, env: dict[str, str] | None = None
) -> Latency:
    """``corpus_mb`` already imported before the appends start; ``env`` adds daemon settings."""
    result = Latency(appends=appends)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="mnemo-bench-latency-") as tmp:
        root = Path(tmp) / "projects"
        write_corpus(root, target_bytes=int(corpus_mb * MB), seed=seed)
        server = PostgresServer()
        try:
            server.start()
            dsn = create_database(server, "bench_latency")
            with running_sink() as sink, (Path(tmp) / "daemon.log").open("wb") as log:
                env = base_env(
                    MNEMO_DATABASE_URL=dsn,
                    MNEMO_HEALTH__PORT="0",
                    OTEL_EXPORTER_OTLP_ENDPOINT=sink.url,
                    **(env or {}),
                )
                proc = subprocess.Popen(
                    [sys.executable, "-m", "mnemo_otel", "run", str(root)],
                    cwd=REPO,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                try:
                    anyio.run(_run, dsn, root, result, rng, proc)
                finally:
                    proc.terminate()
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            result.daemon_log = (Path(tmp) / "daemon.log").read_text(errors="replace")
        finally:
            server.destroy()
    return result


async def _run(
    dsn: str, root: Path, result: Latency, rng: random.Random, proc: subprocess.Popen[bytes]
) -> None:
    conn = await _connect(dsn)
    try:
        await _wait_for_import(conn, root, proc)
        written = threading.Event()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_write_then_flag, root, result, rng, written)
            with anyio.fail_after(600):
                await _poll(conn, result, written)
        rows = await conn.fetch(
            "SELECT key, extract(epoch FROM imported_at)::float8 AS at FROM mnemo.entries WHERE key = ANY($1::text[])",
            list(result.appended),
        )
        result.committed = {r["key"]: r["at"] for r in rows}
    finally:
        await conn.close()


async def _connect(dsn: str) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    return conn


async def _wait_for_import(conn: asyncpg.Connection, root: Path, proc: subprocess.Popen[bytes]) -> None:
    """The starting corpus fully imported: from here on the daemon only waits for appends."""
    target = await anyio.to_thread.run_sync(_corpus_bytes, root)
    with anyio.fail_after(300):
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the daemon exited with {proc.returncode}")
            exists = await conn.fetchval("SELECT to_regclass('mnemo.files') IS NOT NULL")
            if (
                exists
                and await conn.fetchval("SELECT COALESCE(sum(committed_offset), 0) FROM mnemo.files")
                >= target
            ):
                return
            await anyio.sleep(0.1)


async def _write_then_flag(root: Path, result: Latency, rng: random.Random, written: threading.Event) -> None:
    try:
        await anyio.to_thread.run_sync(_write, root, result, rng)
    finally:
        written.set()


def _corpus_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.jsonl"))


async def _poll(conn: asyncpg.Connection, result: Latency, written: threading.Event) -> None:
    """Until every appended line has been seen (and the writer is done)."""
    while True:
        waiting = [k for k in list(result.appended) if k not in result.visible]
        if not waiting and written.is_set():
            return
        if waiting:
            found = await conn.fetch("SELECT key FROM mnemo.entries WHERE key = ANY($1::text[])", waiting)
            now = time.time()
            for r in found:
                result.visible[r["key"]] = now
        await anyio.sleep(POLL_SECONDS)


def _write(root: Path, result: Latency, rng: random.Random) -> None:
    """One line at a time, 50-200 ms apart, to 4 transcripts; two of them are created mid-run."""
    existing = sorted(root.rglob("*.jsonl"))[:2]
    project = existing[0].parent
    new = [project / f"{uuid.UUID(int=rng.getrandbits(128))}.jsonl" for _ in range(2)]
    for i in range(result.appends):
        targets = existing + (new if i >= result.appends // 4 else [])
        path = rng.choice(targets)
        key = str(uuid.UUID(int=rng.getrandbits(128)))
        data = line(
            {"type": "user", "uuid": key, "sessionId": path.stem, "message": {"content": f"line {i}"}}
        )
        with path.open("ab") as f:
            f.write(data)
        result.appended[key] = time.time()
        time.sleep(rng.uniform(0.05, 0.2))


def _percentile(values: Sequence[float], q: float) -> float:
    index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[index]


def table(r: Latency) -> str:
    rows = []
    p99_visible = float("nan")
    for name, values in (
        ("append -> imported_at (transaction start)", r.commit_latencies()),
        ("append -> row visible (poll every 10 ms)", r.visible_latencies()),
    ):
        rows.append(
            (
                name,
                len(values),
                f"{_percentile(values, 0.5) * 1000:.0f}",
                f"{_percentile(values, 0.99) * 1000:.0f}",
                f"{values[-1] * 1000:.0f}",
            )
        )
        p99_visible = _percentile(values, 0.99)
    missing = r.appends - len(r.visible)
    return "\n".join(
        [
            (
                f"append_latency: {r.appends} appends, 50-200 ms apart, 4 transcripts (2 created mid-run); "
                f"daemon with default settings, telemetry on (OTLP to a local sink); {missing} never seen"
            ),
            format_table(["latency", "n", "p50 ms", "p99 ms", "max ms"], rows),
            (
                f"p99 visible: {p99_visible:.3f} s (goal <= {GOAL_P99_SECONDS:.0f} s: "
                f"{verdict(p99_visible <= GOAL_P99_SECONDS and missing == 0)})"
            ),
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.append_latency", description=__doc__)
    parser.add_argument("--appends", type=int, default=200, help="lines appended (default 200)")
    args = parser.parse_args(argv)
    print(format_table(["", ""], environment()))
    print()
    print(table(measure(args.appends)))


if __name__ == "__main__":
    main()
