"""Import throughput against the exactly-once floor on the same lines and PostgreSQL (goal <= 2 x).

The floor, measured in the same run, is what any exactly-once keyed store pays at least: every
complete line with its key (the importer's: the line's ``uuid``, else ``sha256:`` + its digest,
computed from the parsed line on the client) COPYed into a temporary staging table, then moved into
``keyed_lines(key text PRIMARY KEY, data jsonb)`` by one ``INSERT ... SELECT DISTINCT ON (key) ... ON
CONFLICT DO NOTHING``, one transaction per 2,000 lines. The importer does everything the data contract
asks on top (entries with their envelope columns and indexes, the exact bytes, quarantine, exchanges
and sessions folded, a checkpoint per batch in the same transaction), with telemetry on, exporting to
a receiver that does nothing.

For scale, two more rows: the same keyed lines COPYed into a table with no index in one transaction
(the bare wire and jsonb cost, the floor of an earlier round that ignored the key index).

A third run per round COPYs the same lines straight into a migrated ``mnemo.entries`` (envelope
columns, primary key and session index; the first copy of each key only; one transaction): the cost
of the table alone, which no importer keeping the data contract can go under.

Runs alternate (importer first, then COPY first, ...), each on a fresh database; the figure is the
median of the per-pair ratios, their spread is the noise. CPU seconds are reported beside the wall
time: the client's (the importer process, or this process for the COPY) and the server's (every
PostgreSQL process of the cluster, reaped backends included).

Usage: ``python -m benchmarks.import_throughput [--mb N] [--runs N] [--seed N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import resource
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import anyio
import asyncpg
import orjson
import psutil

from mnemo_otel.store.migrate import apply_migrations
from testkit.null_receiver import running_null_receiver
from testkit.postgres_server import PostgresServer
from testkit.synthetic import write_corpus

from ._common import MB, base_env, create_database, import_in_child, median, verdict
from ._report import environment, format_table

__all__ = ("Throughput", "main", "measure", "table")

GOAL_RATIO = 2.0
FLOOR_BATCH_LINES = 2000


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    client_cpu: float
    server_cpu: float


@dataclass
class Throughput:
    corpus_bytes: int = 0
    files: int = 0
    lines: int = 0
    entries: int = 0
    max_rss_kib: int = 0
    importer: list[Run] = field(default_factory=list)
    floor: list[Run] = field(default_factory=list)
    copy: list[Run] = field(default_factory=list)
    schema_copy: list[Run] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return sorted(i.seconds / c.seconds for i, c in zip(self.importer, self.floor, strict=True))

    @property
    def schema_ratios(self) -> list[float]:
        return sorted(i.seconds / c.seconds for i, c in zip(self.importer, self.schema_copy, strict=True))


def measure(mb: float, *, runs: int = 5, seed: int = 7) -> Throughput:
    """Generate the corpus, then time the importer and the keyed COPY, alternating, fresh databases."""
    result = Throughput()
    with tempfile.TemporaryDirectory(prefix="mnemo-bench-") as tmp:
        root = Path(tmp) / "projects"
        result.corpus_bytes = write_corpus(root, target_bytes=int(mb * MB), seed=seed)
        files = sorted(root.rglob("*.jsonl"))
        result.files = len(files)
        server = PostgresServer()
        try:
            server.start()
            with running_null_receiver() as receiver:
                env = base_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url)
                for run in range(runs):
                    order = ("importer", "floor", "copy", "schema_copy")
                    for which in order if run % 2 == 0 else order[::-1]:
                        dsn = create_database(server, f"bench_{which}_{run}")
                        if which == "schema_copy":
                            anyio.run(_migrated, dsn)
                        before = _server_cpu(server)
                        if which != "importer":
                            started, cpu = time.perf_counter(), _own_cpu()
                            copy = {"floor": _exactly_once, "copy": _keyed_copy, "schema_copy": _schema_copy}[
                                which
                            ]
                            counted = anyio.run(copy, dsn, files)
                            if which == "copy":
                                result.lines = counted
                            seconds, client = time.perf_counter() - started, _own_cpu() - cpu
                        else:
                            figures = import_in_child(dsn, root, telemetry=True, env=env)
                            seconds, client = figures["seconds"], figures["cpu_seconds"]
                            result.entries = int(figures["entries"])
                            result.max_rss_kib = max(result.max_rss_kib, int(figures["max_rss_kib"]))
                        getattr(result, which).append(Run(seconds, client, _server_cpu(server) - before))
        finally:
            server.destroy()
    return result


async def _exactly_once(dsn: str, files: Sequence[Path]) -> int:
    """The exactly-once floor: staging COPY, then one deduplicating insert, per 2,000-line transaction."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE keyed_lines(key text PRIMARY KEY, data jsonb)")
        await conn.execute("CREATE TEMP TABLE staged(key text, data jsonb)")
        records = _keyed(files)
        while batch := list(itertools.islice(records, FLOOR_BATCH_LINES)):
            async with conn.transaction():
                await conn.copy_records_to_table("staged", records=batch, columns=["key", "data"])
                await conn.execute(
                    "INSERT INTO keyed_lines SELECT DISTINCT ON (key) key, data FROM staged "
                    "ON CONFLICT DO NOTHING"
                )
                await conn.execute("TRUNCATE staged")
        lines: int = await conn.fetchval("SELECT count(*) FROM keyed_lines")
    finally:
        await conn.close()
    return lines


async def _keyed_copy(dsn: str, files: Sequence[Path]) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE keyed_lines(key text, data jsonb)")
        async with conn.transaction():
            await conn.copy_records_to_table("keyed_lines", records=_keyed(files), columns=["key", "data"])
        lines: int = await conn.fetchval("SELECT count(*) FROM keyed_lines")
    finally:
        await conn.close()
    return lines


async def _migrated(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()


async def _schema_copy(dsn: str, files: Sequence[Path]) -> int:
    """The same lines COPYed straight into ``mnemo.entries`` (its columns, its indexes), first copy of
    each key only, one transaction: what the table itself costs, with none of the importer's work."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "entries", schema_name="mnemo", records=_enveloped(files), columns=ENVELOPE_COLUMNS
            )
        lines: int = await conn.fetchval("SELECT count(*) FROM mnemo.entries")
    finally:
        await conn.close()
    return lines


ENVELOPE_COLUMNS = [
    "key", "entry_type", "uuid", "parent_uuid", "session_id", "ts", "data", "source_path", "source_offset",
    "source_host",
]  # fmt: skip


def _enveloped(files: Sequence[Path]) -> Iterator[tuple[object, ...]]:
    seen: set[str] = set()
    for path in files:
        offset = 0
        with path.open("rb") as f:
            for raw in f:
                start, offset = offset, offset + len(raw)
                if not raw.endswith(b"\n") or not raw.strip():
                    continue
                line = raw[:-1]
                obj = orjson.loads(line)
                key = _key(line, obj)
                if key in seen:
                    continue
                seen.add(key)
                stamp = obj.get("timestamp")
                yield (
                    key,
                    obj.get("type") or "",
                    obj.get("uuid") or None,
                    obj.get("parentUuid") or None,
                    obj.get("sessionId") or None,
                    datetime.fromisoformat(stamp) if isinstance(stamp, str) else None,
                    line.decode(),
                    str(path),
                    start,
                    "bench",
                )


def _key(line: bytes, obj: dict[str, object]) -> str:
    uuid = obj.get("uuid")
    return uuid if isinstance(uuid, str) and uuid else "sha256:" + hashlib.sha256(line).hexdigest()


def _keyed(files: Sequence[Path]) -> Iterator[tuple[str, str]]:
    """(key, line) for every complete, non-blank line: the importer's key rule, nothing else."""
    for path in files:
        with path.open("rb") as f:
            for raw in f:
                if not raw.endswith(b"\n") or not raw.strip():
                    continue
                line = raw[:-1]
                yield _key(line, orjson.loads(line)), line.decode()


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _server_cpu(server: PostgresServer) -> float:
    """CPU seconds of the whole cluster so far: the postmaster, its live children, and (through the
    postmaster's children times) every backend that has exited."""
    postmaster = psutil.Process(int((server.datadir / "postmaster.pid").read_text().split()[0]))
    times = postmaster.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in postmaster.children(recursive=True):
        try:
            child_times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += child_times.user + child_times.system
    return total


def table(r: Throughput) -> str:
    mb = r.corpus_bytes / MB

    def row(label: str, runs: list[Run]) -> tuple[str, ...]:
        seconds = median([x.seconds for x in runs])
        return (
            label,
            f"{seconds:.2f}",
            ", ".join(f"{x.seconds:.2f}" for x in runs),
            f"{mb / seconds:.1f}",
            f"{median([x.client_cpu for x in runs]):.2f}",
            f"{median([x.server_cpu for x in runs]):.2f}",
        )

    ratios = r.ratios
    med = median(ratios)
    return "\n".join(
        [
            (
                f"corpus: {mb:.1f} MB, {r.files} files, {r.lines:,} lines, {r.entries:,} entries stored; "
                f"{len(r.importer)} pairs, alternating, fresh database each"
            ),
            format_table(
                ["import_throughput", "median s", "runs s", "MB/s", "client CPU s", "server CPU s"],
                [
                    row("importer, telemetry on (null receiver)", r.importer),
                    row(f"exactly-once floor ({FLOOR_BATCH_LINES:,}-line transactions)", r.floor),
                    row("keyed COPY, no index, one transaction", r.copy),
                    row("COPY into mnemo.entries (its indexes)", r.schema_copy),
                ],
            ),
            (
                f"importer / exactly-once floor, median of pair ratios: {med:.2f} (range {ratios[0]:.2f}-{ratios[-1]:.2f}; "
                f"goal <= {GOAL_RATIO:.1f}: {verdict(med <= GOAL_RATIO)}); importer peak RSS "
                f"{r.max_rss_kib / 1024:.0f} MiB"
            ),
            (
                f"importer / COPY into mnemo.entries: {median(r.schema_ratios):.2f}; floor / keyed COPY with no "
                f"index: {median([f.seconds for f in r.floor]) / median([c.seconds for c in r.copy]):.2f}"
            ),
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.import_throughput", description=__doc__)
    parser.add_argument("--mb", type=float, default=50, help="corpus size in MB (default 50)")
    parser.add_argument("--runs", type=int, default=5, help="pairs (default 5)")
    parser.add_argument("--seed", type=int, default=7, help="corpus generator seed")
    args = parser.parse_args(argv)
    print(format_table(["", ""], environment()))
    print()
    print(table(measure(args.mb, runs=args.runs, seed=args.seed)))


if __name__ == "__main__":
    main()
