"""Import throughput against the floor: a raw asyncpg COPY of the same lines, measured in the same run.

The importer parses every line, keys it, stages it, inserts it as jsonb with ``ON CONFLICT``, folds
exchanges and moves a checkpoint per batch; the raw COPY only moves the bytes into a bare text table.
Their ratio says how much the contract costs (goal: importer time <= 2 x raw COPY).

Usage: ``python -m benchmarks.import_throughput [--mb N] [--seed N]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import asyncpg

from testkit.postgres_server import PostgresServer
from testkit.synthetic import write_corpus

from ._report import REPO, environment, format_table

__all__ = ("Throughput", "main", "measure", "table")

MB = 1_000_000
CHUNK_BYTES = 16 * 1024 * 1024
GOAL_RATIO = 2.0


@dataclass(frozen=True, slots=True)
class Throughput:
    corpus_bytes: int
    files: int
    lines: int
    importer_seconds: float
    importer_entries: int
    importer_max_rss_kib: int
    copy_seconds: float
    copy_lines: int

    @property
    def ratio(self) -> float:
        return self.importer_seconds / self.copy_seconds


def measure(mb: float, *, seed: int = 7) -> Throughput:
    """Generate the corpus, then time the importer and the raw COPY on fresh databases of one server."""
    with tempfile.TemporaryDirectory(prefix="mnemo-bench-") as tmp:
        root = Path(tmp) / "projects"
        corpus_bytes = write_corpus(root, target_bytes=int(mb * MB), seed=seed)
        files = sorted(root.rglob("*.jsonl"))
        server = PostgresServer()
        try:
            server.start()
            anyio.run(_create_databases, server)
            copy_seconds, copy_lines = anyio.run(_raw_copy, server.dsn("bench_raw"), files)
            child = _import_in_child(server.dsn("bench_importer"), root)
        finally:
            server.destroy()
    return Throughput(
        corpus_bytes=corpus_bytes,
        files=len(files),
        lines=copy_lines,
        importer_seconds=float(child["seconds"]),
        importer_entries=int(child["entries"]),
        importer_max_rss_kib=int(child["max_rss_kib"]),
        copy_seconds=copy_seconds,
        copy_lines=copy_lines,
    )


async def _create_databases(server: PostgresServer) -> None:
    conn = await asyncpg.connect(server.dsn())
    try:
        for name in ("bench_raw", "bench_importer"):
            await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()


async def _raw_copy(dsn: str, files: Sequence[Path]) -> tuple[float, int]:
    """COPY every line into ``raw_lines(line text)``: read in 16 MB chunks, escape, stream, one transaction."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE raw_lines(line text)")
        started = time.perf_counter()
        await conn.copy_to_table("raw_lines", source=_copy_payload(files), format="text")
        seconds = time.perf_counter() - started
        lines: int = await conn.fetchval("SELECT count(*) FROM raw_lines")
    finally:
        await conn.close()
    return seconds, lines


async def _copy_payload(files: Sequence[Path]) -> AsyncIterator[bytes]:
    """The files' complete lines in COPY text format (backslash, tab and CR escaped; LF ends a row)."""
    for path in files:
        carry = b""
        with path.open("rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                data = carry + chunk
                cut = data.rfind(b"\n") + 1
                carry = data[cut:]
                if cut:
                    yield _escape(data[:cut])


def _escape(data: bytes) -> bytes:
    return data.replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\r", b"\\r")


def _import_in_child(dsn: str, root: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks._import_child", dsn, str(root)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


def table(result: Throughput) -> str:
    mb = result.corpus_bytes / MB
    rows = [
        (
            "importer (import_once, PostgresSink)",
            f"{result.importer_seconds:.2f}",
            f"{mb / result.importer_seconds:.1f}",
            f"{result.importer_entries / result.importer_seconds:,.0f}",
            f"{result.importer_max_rss_kib / 1024:.0f}",
        ),
        (
            "raw asyncpg COPY into raw_lines(line text)",
            f"{result.copy_seconds:.2f}",
            f"{mb / result.copy_seconds:.1f}",
            f"{result.copy_lines / result.copy_seconds:,.0f}",
            "-",
        ),
    ]
    verdict = "met" if result.ratio <= GOAL_RATIO else "MISSED"
    lines = [
        f"corpus: {mb:.1f} MB, {result.files} files, {result.lines:,} lines, "
        + f"{result.importer_entries:,} entries stored",
        format_table(["import_throughput", "seconds", "MB/s", "lines/s", "peak RSS MiB"], rows),
        f"ratio importer / raw COPY: {result.ratio:.2f} (goal <= {GOAL_RATIO:.1f}: {verdict})",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.import_throughput", description=__doc__)
    parser.add_argument("--mb", type=float, default=50, help="corpus size in MB (default 50)")
    parser.add_argument("--seed", type=int, default=7, help="corpus generator seed")
    args = parser.parse_args(argv)
    print(format_table(["", ""], environment()))
    print()
    print(table(measure(args.mb, seed=args.seed)))


if __name__ == "__main__":
    main()
