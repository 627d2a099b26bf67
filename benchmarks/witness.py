"""The witness's throughput: Claude Code events per second it records, and its CPU per event.

A witness process (telemetry off) on a fresh database receives ``--exports`` OTLP/HTTP protobuf
exports of ``--events`` events each, sent one after another by this process (its CPU is not the
witness's), half of them promising a line (user_prompt / assistant_response), as a busy team's
collector would batch them. Reported: events/s (wall, sender included), events per CPU-second of the
witness process (its cost on one core), and a reconciliation pass over everything it recorded
against an archive that holds half of the lines.

Usage: ``python -m benchmarks.witness [--exports N] [--events N]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import anyio
import asyncpg
import psutil

from mnemo_otel.witness.store import reconcile
from testkit import free_port, http_get, wait_for
from testkit.claude_events import claude_event, export
from testkit.postgres_server import PostgresServer
from testkit.witnessing import witness_env

from ._common import create_database
from ._report import REPO, environment, format_table


def _exports(count: int, per_export: int) -> list[bytes]:
    bodies = []
    for n in range(count):
        events = []
        for i in range(per_export):
            session = f"session-{n % 50}"
            if i % 2:
                events.append(claude_event("api_request", session, sequence=i, prompt_id=f"p{n}-{i}"))
            else:
                kind = "user_prompt" if i % 4 == 0 else "assistant_response"
                events.append(
                    claude_event(kind, session, sequence=i, message_uuid=f"u{n}-{i}", query_source="sdk")
                )
        bodies.append(export(events, host=f"host-{n % 5}").SerializeToString())
    return bodies


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(
        f"{url}/v1/logs", data=body, method="POST", headers={"Content-Type": "application/x-protobuf"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status != 200:
            raise RuntimeError(f"witness answered {response.status}")


async def _archive_half_and_reconcile(dsn: str, lines: int) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO mnemo.entries (key, entry_type, data, source_path, source_offset, source_host)"
            " SELECT uuid, 'user', '{}'::jsonb, '/bench', 0, 'bench' FROM"
            " (SELECT message_uuid AS uuid FROM mnemo.witnessed ORDER BY event_id LIMIT $1) AS half",
            lines // 2,
        )
        started = time.perf_counter()
        await reconcile(conn)
        return time.perf_counter() - started
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.witness", description=__doc__)
    parser.add_argument("--exports", type=int, default=400)
    parser.add_argument("--events", type=int, default=50)
    args = parser.parse_args()
    bodies = _exports(args.exports, args.events)
    events = args.exports * args.events
    with tempfile.TemporaryDirectory(prefix="mnemo-bench-witness-") as tmp:
        server = PostgresServer()
        try:
            server.start()
            dsn = create_database(server, "bench_witness")
            port = free_port()
            log = Path(tmp) / "witness.log"
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "mnemo_otel", "witness"],
                    cwd=REPO,
                    env=witness_env(dsn, port, MNEMO_WITNESS__INTERVAL_SECONDS="3600"),
                    stdout=out,
                    stderr=out,
                )
            url = f"http://127.0.0.1:{port}"
            try:
                wait_for(lambda: http_get(f"{url}/healthz")[0] == 200 or None, timeout=60, what="the witness")
                witness = psutil.Process(proc.pid)
                cpu_before = sum(witness.cpu_times()[:2])
                started = time.perf_counter()
                for body in bodies:
                    _post(url, body)
                wall = time.perf_counter() - started
                cpu = sum(witness.cpu_times()[:2]) - cpu_before
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            lines = events // 2
            reconcile_seconds = anyio.run(_archive_half_and_reconcile, dsn, lines)
        finally:
            server.destroy()
    print(format_table(["machine", ""], environment()))
    rows = [
        ("events received", f"{events} in {args.exports} exports ({lines} promising a line)"),
        ("throughput (wall, sender included)", f"{events / wall:.0f} events/s"),
        ("witness CPU", f"{cpu:.2f} s: {events / cpu:.0f} events per CPU-second (one core)"),
        (
            "reconciliation pass",
            f"{reconcile_seconds * 1000:.0f} ms over {lines} witnessed lines, half archived",
        ),
    ]
    print(format_table(["witness", "figure"], rows))


if __name__ == "__main__":
    main()
