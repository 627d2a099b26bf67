"""Aggregate import throughput of 1, 2 and 4 importers (one per host) writing to one PostgreSQL.

The same corpus every time, cut into four quarters: one importer imports all four, two import two
each, four one each (one-shot ``mnemo-otel import`` processes with their own ``MNEMO_HOST_ID``,
started together). The wall time runs from the first start to the last exit, start-up included, on a
fresh database each run; the runs alternate the importer counts and the medians are reported.
Ratios are to one importer: above 1 means the fleet imports faster together than one machine alone.

Usage: ``python -m benchmarks.fleet [--mb N] [--repeats N] [--seed N]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from testkit.chaos.harness import importer_env
from testkit.postgres_server import PostgresServer
from testkit.synthetic import write_corpus

from ._common import MB, create_database, median
from ._report import REPO, environment, format_table

__all__ = ("main", "measure")

IMPORTER_COUNTS = (1, 2, 4)


def _run_fleet(dsn: str, quarters: Sequence[Path], importers: int) -> float:
    """Start ``importers`` one-shot imports at once, each over its share of the quarters; wall seconds."""
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
    return time.perf_counter() - started


def measure(mb: float, repeats: int, seed: int) -> tuple[int, dict[int, list[float]]]:
    """Corpus bytes and, per importer count, the wall seconds of each run."""
    seconds: dict[int, list[float]] = {n: [] for n in IMPORTER_COUNTS}
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


def table(corpus: int, seconds: dict[int, list[float]]) -> str:
    base = median(seconds[1])
    rows = [
        (
            n,
            f"{median(runs):.2f}",
            f"{corpus / MB / median(runs):.2f}",
            f"{base / median(runs):.2f}",
            " ".join(f"{s:.1f}" for s in runs),
        )
        for n, runs in seconds.items()
    ]
    headers = ["importers", "median s", "aggregate MB/s", "speed-up vs 1", "runs (s)"]
    return f"corpus: {corpus / MB:.1f} MB in 4 quarters\n" + format_table(headers, rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet", description=__doc__)
    parser.add_argument("--mb", type=float, default=40, help="corpus size in MB (default 40)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per importer count (default 3)")
    parser.add_argument("--seed", type=int, default=7, help="corpus generator seed")
    args = parser.parse_args(argv)
    print(format_table(["", ""], environment()))
    print()
    print(table(*measure(args.mb, args.repeats, args.seed)))


if __name__ == "__main__":
    main()
