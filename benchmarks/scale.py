"""Speed at team scale: one host's costs while the archive around it grows to 10 M lines from 50 hosts.

The archive grows in steps (default 0.1 M, 1 M and 10 M lines). Each step:

1. Bulk growth: a template host's rows, imported once by the real importer, are cloned by the server
   into 49 more hosts (``INSERT ... SELECT``: files, entries, blocks, sessions, exchanges; new random
   uuid keys, sessions and paths per copy), then ``VACUUM ANALYZE`` as autovacuum would leave it. The
   importer itself would take most of an hour for 10 M lines on 2 cores; cloning takes minutes.
2. ``--runs`` new probe hosts, each with the same fixed share (``--probe-lines``, a fresh corpus),
   import in turn (the importer in a child process, ``benchmarks._import_child``; WAL written is
   read around each); the first one then runs ``mnemo-otel verify`` of its files and its restore
   drill ``mnemo-otel restore --check --host``, ``--runs`` times each (child processes, wall time and
   peak RSS from ``wait4``, which covers the verify's worker processes too); and the database's size
   per line is taken. Medians are reported.

Goals: the probe's import throughput, scrub time and scrub memory within 1.5x from the smallest to
the largest archive: a host pays for its own lines, not the fleet's.

The last part (``benchmarks._fleet_metrics``) loads the shipped rules (the promtool mirror: recording
and alert rules) into Debian's Prometheus, scraping 1 and then 50 hosts' importer series, and reports
each rule group's evaluation time and the series per host.

Usage: ``python -m benchmarks.scale [--sizes 0.1,1,10] [--probe-lines N] [--runs N] [--no-prometheus]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import anyio
import asyncpg

from testkit.chaos.harness import importer_env
from testkit.postgres_server import PostgresServer
from testkit.synthetic import session_lines

from . import _fleet_metrics
from ._common import MB, create_database, import_in_child, median, verdict
from ._report import REPO, environment, format_table

__all__ = ("Step", "main", "measure")

HOSTS: Final = 50
TEMPLATE_HOST: Final = "fleet-00"
GOAL_RATIO: Final = 1.5
TURNS: Final = 20
TEXT_BYTES: Final = 40  # lines of about 400 bytes
ROWS_PER_STATEMENT: Final = 200_000

# Columns rewritten when a template row is cloned for host $1, copy c (the rest is copied as is).
_KEYS = ("key", "uuid", "parent_uuid", "session_id", "open_session_id", "open_prompt_uuid", "prompt_uuid")
_KEYS_TOO = ("last_entry_uuid", "entry_key", "first_session_id")
_PATHS = ("path", "root", "source_path")
_HOSTS = ("host", "source_host", "host_id")


def _rewrite(column: str) -> str:
    if column in _KEYS or column in _KEYS_TOO:
        return f"(md5(t.{column} || '/' || $1 || '/' || c)::uuid)::text"
    if column in _PATHS:
        return f"'/fleet/' || $1 || '/' || c || t.{column}"
    if column in _HOSTS:
        return "$1"
    return f"t.{column}"


@dataclass(slots=True)
class Step:
    """One archive size and what the probe host measured at it."""

    lines: int
    hosts: int
    growth_seconds: float
    grown_lines: int
    vacuum_seconds: float
    probe_lines: int
    probe_bytes: int
    import_seconds: list[float]
    verify_seconds: list[float] = field(default_factory=list)
    verify_rss_kib: list[int] = field(default_factory=list)
    drill_seconds: list[float] = field(default_factory=list)
    drill_rss_kib: list[int] = field(default_factory=list)
    database_bytes: int = 0
    relations: dict[str, int] = field(default_factory=dict)
    wal_bytes: int = 0  # written during the probe's import (fsync and full-page writes off: a floor)

    @property
    def import_lines_s(self) -> float:
        return self.probe_lines / median(self.import_seconds)

    @property
    def bytes_per_line(self) -> float:
        return self.database_bytes / self.lines


def write_corpus(root: Path, *, lines: int, seed: int) -> int:
    """Plain sessions of about 400-byte lines under ``root/<project>/<session>.jsonl`` until ``lines``;
    returns bytes written."""
    rng = random.Random(seed)
    written = count = index = 0
    while count < lines:
        project = root / f"-home-user-project-{index % 5}"
        project.mkdir(parents=True, exist_ok=True)
        session_id = str(uuid.UUID(int=rng.getrandbits(128)))
        with (project / f"{session_id}.jsonl").open("wb") as f:
            for data in session_lines(session_id, turns=TURNS, rng=rng, text_bytes=TEXT_BYTES):
                f.write(data)
                written += len(data)
                count += 1
        index += 1
    return written


# -- the bulk growth -------------------------------------------------------------------------------


async def _columns(conn: asyncpg.Connection[asyncpg.Record], table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'mnemo' "
        "AND table_name = $1 AND is_identity = 'NO' AND is_generated = 'NEVER' ORDER BY ordinal_position",
        table,
    )
    return [row[0] for row in rows]


async def _clone_statements(conn: asyncpg.Connection[asyncpg.Record]) -> list[str]:
    """One ``INSERT ... SELECT`` per table, cloning the template's rows (temp tables ``tpl_*``) into
    host $1 as copies $2..$3; blocks find their new file by its new path."""
    series = "CROSS JOIN generate_series($2::int, $3::int) AS c"
    statements = []
    for table in ("hosts", "files", "entries", "sessions", "exchanges"):
        columns = await _columns(conn, table)
        exprs = ", ".join(_rewrite(column) for column in columns)
        source = f"tpl_{table} AS t {series}"
        if table == "hosts":  # one row per host, not per copy
            source = "tpl_hosts AS t CROSS JOIN (SELECT $2::int + $3::int * 0 AS c) AS one"
            statements.append(
                f"INSERT INTO mnemo.hosts ({', '.join(columns)}) SELECT {exprs} FROM {source} "
                "ON CONFLICT DO NOTHING"
            )
            continue
        statements.append(f"INSERT INTO mnemo.{table} ({', '.join(columns)}) SELECT {exprs} FROM {source}")
    columns = await _columns(conn, "blocks")
    exprs = ", ".join("nf.file_id" if column == "file_id" else f"t.{column}" for column in columns)
    statements.append(
        f"INSERT INTO mnemo.blocks ({', '.join(columns)}) SELECT {exprs} FROM tpl_blocks AS t "
        f"JOIN tpl_files AS tf ON tf.file_id = t.file_id {series} "
        "JOIN mnemo.files AS nf ON nf.host = $1 AND nf.path = '/fleet/' || $1 || '/' || c || tf.path"
    )
    return statements


_TEMPLATE: Final = (
    "CREATE TEMP TABLE tpl_hosts AS SELECT * FROM mnemo.hosts WHERE host_id = $1",
    "CREATE TEMP TABLE tpl_files AS SELECT * FROM mnemo.files WHERE host = $1",
    "CREATE TEMP TABLE tpl_entries AS SELECT * FROM mnemo.entries WHERE source_host = $1",
    "CREATE TEMP TABLE tpl_blocks AS SELECT * FROM mnemo.blocks WHERE file_id IN (SELECT file_id FROM tpl_files)",
    (
        "CREATE TEMP TABLE tpl_sessions AS SELECT * FROM mnemo.sessions "
        "WHERE session_id IN (SELECT session_id FROM tpl_entries)"
    ),
    "CREATE TEMP TABLE tpl_exchanges AS SELECT * FROM mnemo.exchanges WHERE source_host = $1",
)


async def _grow(dsn: str, target: int, next_copy: int) -> tuple[int, int, float, float]:
    """Clone the template until the archive holds about ``target`` lines; (lines added, next copy
    number, growth seconds, vacuum seconds)."""
    conn = await asyncpg.connect(dsn)
    try:
        stored = int(await conn.fetchval("SELECT count(*) FROM mnemo.entries"))
        for statement in _TEMPLATE:
            await conn.execute(statement.replace("$1", "'" + TEMPLATE_HOST + "'"))
        per_copy = int(await conn.fetchval("SELECT count(*) FROM tpl_entries"))
        statements = await _clone_statements(conn)
        copies = max(0, round((target - stored) / per_copy))
        chunk = max(1, ROWS_PER_STATEMENT // per_copy)
        started = time.perf_counter()
        first = next_copy
        while next_copy < first + copies:
            last = min(first + copies, next_copy + chunk) - 1
            host = f"fleet-{1 + next_copy % (HOSTS - 1):02d}"
            async with conn.transaction():
                for statement in statements:
                    await conn.execute(statement, host, next_copy, last)
            next_copy = last + 1
        grown = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE)")
        return copies * per_copy, next_copy, grown, time.perf_counter() - started
    finally:
        await conn.close()


# -- the probe host ----------------------------------------------------------------------------------


def _child(args: list[str], env: dict[str, str]) -> tuple[float, int, int, str]:
    """Run a child to its end: (wall seconds, peak RSS KiB of it and its reaped children, exit code,
    stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if code not in (0,):
            raise RuntimeError(f"{args[3:5]} failed ({code}):\n{err.read().decode()[-3000:]}")
        return seconds, usage.ru_maxrss, code, out.read().decode()


def _verify(dsn: str, root: Path, host: str) -> tuple[float, int]:
    seconds, rss, _, out = _child(
        [sys.executable, "-m", "mnemo_otel", "verify", "--json", str(root)],
        importer_env(dsn, MNEMO_HOST_ID=host),
    )
    report = json.loads(out)
    if report["missing"] != 0 or report["lines"] == 0:
        raise RuntimeError(f"verify of {host}: {report}")
    return seconds, rss


def _drill(dsn: str, host: str) -> tuple[float, int]:
    seconds, rss, _, _ = _child(
        [sys.executable, "-m", "mnemo_otel", "restore", "--check", "--host", host],
        importer_env(dsn, MNEMO_HOST_ID=host),
    )
    return seconds, rss


_RELATIONS: Final = (
    "mnemo.entries",
    "mnemo.entries_pkey",
    "mnemo.entries_session_ts",
    "mnemo.entries_host_key",
    "mnemo.blocks",
    "mnemo.exchanges",
)


async def _wal(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"))
    finally:
        await conn.close()


async def _sizes(dsn: str) -> tuple[int, int, dict[str, int]]:
    conn = await asyncpg.connect(dsn)
    try:
        lines = int(await conn.fetchval("SELECT count(*) FROM mnemo.entries"))
        size = int(await conn.fetchval("SELECT pg_database_size(current_database())"))
        relations = {}
        for name in _RELATIONS:
            if await conn.fetchval("SELECT to_regclass($1)", name) is not None:
                relations[name] = int(await conn.fetchval("SELECT pg_table_size($1::regclass)", name))
        return lines, size, relations
    finally:
        await conn.close()


def measure(sizes: Sequence[float], probe_lines: int, runs: int, tmp: Path) -> list[Step]:
    """Grow one archive through ``sizes`` (millions of lines), measuring a fresh probe host at each."""
    steps: list[Step] = []
    server = PostgresServer()
    try:
        server.start()
        dsn = create_database(server, "bench_scale")
        write_corpus(tmp / "template", lines=probe_lines, seed=1)
        import_in_child(dsn, tmp / "template", telemetry=False, host=TEMPLATE_HOST)
        next_copy = 0
        for index, millions in enumerate(sizes):
            target = int(millions * 1_000_000)
            grown, next_copy, grow_s, vacuum_s = anyio.run(_grow, dsn, target - runs * probe_lines, next_copy)
            # ``runs`` probe hosts, each importing a fresh corpus; the first one is scrubbed.
            probes = [(f"probe-{index + 1}-{r + 1}", tmp / f"probe-{index + 1}-{r + 1}") for r in range(runs)]
            seconds_each: list[float] = []
            wal_bytes = corpus = probe_lines_each = 0
            for run, (host, root) in enumerate(probes):
                corpus = write_corpus(root, lines=probe_lines, seed=100 * (index + 1) + run)
                wal_before = anyio.run(_wal, dsn)
                imported = import_in_child(dsn, root, telemetry=False, host=host)
                wal_bytes += anyio.run(_wal, dsn) - wal_before
                seconds_each.append(imported["seconds"])
                probe_lines_each = int(imported["entries"])
            lines, size, relations = anyio.run(_sizes, dsn)
            step = Step(
                lines=lines,
                hosts=HOSTS + (index + 1) * runs,
                growth_seconds=grow_s,
                grown_lines=grown,
                vacuum_seconds=vacuum_s,
                probe_lines=probe_lines_each,
                probe_bytes=corpus,
                import_seconds=seconds_each,
                database_bytes=size,
                relations=relations,
                wal_bytes=wal_bytes // runs,
            )
            probe, root = probes[0]
            for _ in range(runs):
                seconds, rss = _verify(dsn, root, probe)
                step.verify_seconds.append(seconds)
                step.verify_rss_kib.append(rss)
                seconds, rss = _drill(dsn, probe)
                step.drill_seconds.append(seconds)
                step.drill_rss_kib.append(rss)
            steps.append(step)
            print(f"  {lines:,} lines: {_step_line(step)}", file=sys.stderr, flush=True)
    finally:
        server.destroy()
    return steps


def _step_line(step: Step) -> str:
    return (
        f"grown {step.grown_lines:,} in {step.growth_seconds:.0f} s + vacuum {step.vacuum_seconds:.0f} s; "
        f"import {step.import_lines_s:,.0f} lines/s; verify {median(step.verify_seconds):.2f} s "
        f"{max(step.verify_rss_kib) / 1024:.0f} MiB; drill {median(step.drill_seconds):.2f} s "
        f"{max(step.drill_rss_kib) / 1024:.0f} MiB; {step.bytes_per_line:.0f} B/line"
    )


# name, figure, format, held to the 1.5x goal, lower is better
_FIGURES: Final[tuple[tuple[str, Callable[[Step], float], str, bool, bool], ...]] = (
    ("probe import, lines/s", lambda s: s.import_lines_s, ",.0f", True, False),
    ("probe verify, wall s", lambda s: median(s.verify_seconds), ".2f", True, True),
    ("probe verify, peak RSS MiB", lambda s: max(s.verify_rss_kib) / 1024, ".0f", True, True),
    ("probe drill, wall s", lambda s: median(s.drill_seconds), ".2f", True, True),
    ("probe drill, peak RSS MiB", lambda s: max(s.drill_rss_kib) / 1024, ".0f", True, True),
    ("probe import, WAL bytes per line", lambda s: s.wal_bytes / s.probe_lines, ",.0f", False, True),
    ("database, MB", lambda s: s.database_bytes / MB, ",.0f", False, True),
    ("database bytes per line", lambda s: s.bytes_per_line, ".0f", False, True),
)


def table(steps: Sequence[Step]) -> str:
    """The figures at each size, and the largest size against the smallest with the goal's verdict."""
    first, last = steps[0], steps[-1]

    def row(name: str, values: list[float], fmt: str, goal: bool, lower_is_better: bool) -> list[str]:
        ratio = values[-1] / values[0] if values[0] else float("nan")
        worst = ratio if lower_is_better else 1 / ratio
        mark = verdict(worst <= GOAL_RATIO) if goal else ""
        return [name, *[format(v, fmt) for v in values], f"{ratio:.2f}x", mark]

    rows = [
        row(name, [getter(step) for step in steps], fmt, goal, lower)
        for name, getter, fmt, goal, lower in _FIGURES
    ]
    for name in first.relations:
        values = [step.relations.get(name, 0) / MB for step in steps]
        rows.append(row(f"  {name}, MB", values, ",.0f", False, True))
    headers = [
        "",
        *[f"{s.lines / 1e6:.2f} M lines" for s in steps],
        f"{last.lines / first.lines:.0f}x lines",
        "goal 1.5x",
    ]
    growth = "; ".join(
        f"{s.grown_lines / 1e6:.2f} M cloned in {s.growth_seconds:.0f} s + VACUUM ANALYZE {s.vacuum_seconds:.0f} s"
        for s in steps
    )
    return "\n".join(
        [
            (
                f"probe host: {first.probe_lines:,} lines ({first.probe_bytes / MB:.1f} MB), a fresh corpus "
                f"and host at each size; medians of {len(first.verify_seconds)} imports (one host each) "
                "and of as many verify and drill runs of the first; "
                f"archive of {last.hosts} hosts at the end"
            ),
            format_table(headers, rows),
            f"growth: {growth}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    parser.add_argument("--sizes", default="0.1,1,10", help="archive sizes, millions of lines (0.1,1,10)")
    parser.add_argument("--probe-lines", type=int, default=20_000, help="the probe host's share (20000)")
    parser.add_argument(
        "--runs", type=int, default=2, help="probe imports, and verify and drill runs, per size (default 2)"
    )
    parser.add_argument("--no-prometheus", action="store_true", help="leave out the rule evaluation part")
    parser.add_argument("--rounds", type=int, default=12, help="rule evaluation rounds per host count (12)")
    args = parser.parse_args(argv)
    sizes = [float(s) for s in args.sizes.split(",")]
    print(
        format_table(
            ["", ""], [*environment(), ("load average", " ".join(f"{x:.1f}" for x in os.getloadavg()))]
        )
    )
    print()
    with tempfile.TemporaryDirectory(prefix="mnemo-bench-scale-") as tmp:
        print(table(measure(sizes, args.probe_lines, args.runs, Path(tmp))))
        if not args.no_prometheus:
            print()
            print(
                _fleet_metrics.table(
                    _fleet_metrics.measure(Path(tmp) / "prometheus", (1, HOSTS), args.rounds)
                )
            )


if __name__ == "__main__":
    main()
