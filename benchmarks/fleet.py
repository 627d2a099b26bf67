"""Aggregate import throughput of 1, 2 and 4 importers (one per host) writing to one PostgreSQL.

The same corpus every time, cut into four quarters: one importer imports all four, two import two
each, four one each (one-shot ``mnemo-otel import`` processes with their own ``MNEMO_HOST_ID``,
started together), on a fresh database each run; the runs alternate the importer counts and the
medians are reported. Two clocks: the wall time from the first start to the last exit (process start-up
and schema set-up included), and the import window from the first to the last batch transaction
(PostgreSQL's own clock, start-ups left out). Ratios are to one importer: above 1 means the fleet
imports faster together than one machine alone. The load average before the runs is printed: other
work on the machine weighs on every figure.

Usage: ``python -m benchmarks.fleet [--mb N] [--repeats N] [--seed N]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
import asyncpg

from testkit.chaos.harness import importer_env
from testkit.postgres_server import PostgresServer
from testkit.synthetic import write_corpus

from ._common import MB, create_database, median
from ._report import REPO, environment, format_table

__all__ = ("main", "measure")

IMPORTER_COUNTS = (1, 2, 4)


def _run_fleet(dsn: str, quarters: Sequence[Path], importers: int) -> tuple[float, float]:
    """Start ``importers`` one-shot imports at once, each over its share of the quarters; wall seconds
    and the import window's."""
    shares = [list(quarters[i::importers]) for i in range(importers)]
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mnemo_otel", "import", *map(str, share)],
            cwd=REPO,
            env=importer_env(dsn, MNEMO_HOST_ID=f"bench-host-{i + 1}"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i, share in enumerate(shares)
    ]
    for proc in procs:
        _, stderr = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"an importer failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    return time.perf_counter() - started, anyio.run(_import_window, dsn)


async def _import_window(dsn: str) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        seconds: float = await conn.fetchval(
            "SELECT extract(epoch FROM (SELECT max(updated_at) FROM mnemo.files) - min(imported_at))::float8 "
            "FROM mnemo.entries"
        )
        return seconds
    finally:
        await conn.close()


Runs = dict[int, list[tuple[float, float]]]


def measure(mb: float, repeats: int, seed: int) -> tuple[int, Runs]:
    """Corpus bytes and, per importer count, the (wall, import window) seconds of each run."""
    seconds: Runs = {n: [] for n in IMPORTER_COUNTS}
    with tempfile.TemporaryDirectory(prefix="mnemo-bench-fleet-") as tmp:
        quarters = [Path(tmp) / f"quarter-{i}" for i in range(4)]
        corpus = sum(
            write_corpus(q, target_bytes=int(mb * MB / 4), seed=seed + i) for i, q in enumerate(quarters)
        )
        server = PostgresServer()
        try:
            server.start()
            run = 0
            for repeat in range(repeats):
                order = IMPORTER_COUNTS if repeat % 2 == 0 else tuple(reversed(IMPORTER_COUNTS))
                for importers in order:
                    dsn = create_database(server, f"bench_fleet_{run}")
                    run += 1
                    seconds[importers].append(_run_fleet(dsn, quarters, importers))
        finally:
            server.destroy()
    return corpus, seconds


def table(corpus: int, seconds: Runs) -> str:
    wall = {n: median([w for w, _ in runs]) for n, runs in seconds.items()}
    window = {n: median([i for _, i in runs]) for n, runs in seconds.items()}
    rows = [
        (
            n,
            f"{wall[n]:.2f}",
            f"{wall[1] / wall[n]:.2f}",
            f"{window[n]:.2f}",
            f"{corpus / MB / window[n]:.2f}",
            f"{window[1] / window[n]:.2f}",
            " ".join(f"{w:.1f}/{i:.1f}" for w, i in runs),
        )
        for n, runs in seconds.items()
    ]
    headers = [
        "importers",
        "wall s",
        "wall vs 1",
        "window s",
        "window MB/s",
        "window vs 1",
        "runs wall/window",
    ]
    return f"corpus: {corpus / MB:.1f} MB in 4 quarters\n" + format_table(headers, rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet", description=__doc__)
    parser.add_argument("--mb", type=float, default=40, help="corpus size in MB (default 40)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per importer count (default 3)")
    parser.add_argument("--seed", type=int, default=7, help="corpus generator seed")
    args = parser.parse_args(argv)
    print(
        format_table(
            ["", ""], [*environment(), ("load average", " ".join(f"{x:.1f}" for x in os.getloadavg()))]
        )
    )
    print()
    print(table(*measure(args.mb, args.repeats, args.seed)))


if __name__ == "__main__":
    main()
