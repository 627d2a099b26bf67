"""The chaos suite's full form as a report: one row per scenario (runs, lost, duplicated, recovery).

Usage: ``python -m benchmarks.chaos [--reduced] [--seed N]``. The same scenarios run reduced in the
test suite (``tests/chaos``); here they run at full scale and print their figures instead of asserting.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import anyio

from testkit.chaos.disk import disk_full
from testkit.chaos.harness import FULL, REDUCED, ChaosResult, Scale
from testkit.chaos.scenarios import appends_while_importing, database_outages, sigkill_importer
from testkit.chaos.supervisor import hung_loop_under_supervisor
from testkit.chaos.surroundings import collector_outage, truncate_and_replace
from testkit.postgres_server import PostgresServer

from ._report import environment, format_table

__all__ = ("SCENARIOS", "main", "run", "table")

SCENARIOS = ("sigkill", "outage", "appends", "collector", "truncate", "disk", "hang")


async def run(scale: Scale, *, seed: int, only: Sequence[str] = SCENARIOS) -> list[ChaosResult]:
    """Every scenario in turn, each in its own directory; one server for those that need not stop it."""
    results: list[ChaosResult] = []
    server = PostgresServer()
    try:
        await anyio.to_thread.run_sync(server.start)
        with tempfile.TemporaryDirectory(prefix="mnemo-chaos-") as tmp:
            for name in only:
                workdir = Path(tmp) / name
                workdir.mkdir()
                if name == "sigkill":
                    results.append(await sigkill_importer(server, workdir, scale, seed=seed))
                elif name == "outage":
                    results.append(await database_outages(workdir, scale, seed=seed))
                elif name == "appends":
                    results.append(await appends_while_importing(server, workdir, scale, seed=seed))
                elif name == "collector":
                    results.append(await collector_outage(server, workdir, scale, seed=seed))
                elif name == "truncate":
                    results.append(await truncate_and_replace(server, workdir, scale, seed=seed))
                elif name == "disk":
                    results.append(await disk_full(workdir, scale, seed=seed))
                elif name == "hang":
                    results.append(await hung_loop_under_supervisor(server, workdir, scale, seed=seed))
                else:
                    raise ValueError(f"no such scenario: {name}")
    finally:
        await anyio.to_thread.run_sync(server.destroy)
    return results


def table(results: Sequence[ChaosResult]) -> str:
    rows = []
    for r in results:
        recovery = sorted(r.recovery_seconds)
        if len(recovery) > 3:
            figures = f"median {recovery[len(recovery) // 2]:.2f}, max {recovery[-1]:.2f} (n={len(recovery)})"
        else:
            figures = ", ".join(f"{s:.2f}" for s in r.recovery_seconds) or "-"
        verdict = "ok" if not r.differences and r.lost == 0 and r.duplicated == 0 else "FAILED"
        rows.append((r.scenario, r.runs, r.lost, r.duplicated, figures, verdict))
    notes = [f"- {r.scenario}: {'; '.join(r.notes + r.differences)}" for r in results]
    headers = ["scenario", "runs", "lost", "duplicated", "recovery seconds", "verdict"]
    return "\n".join([format_table(headers, rows), *notes])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__)
    parser.add_argument(
        "--reduced", action="store_true", help="the reduced (CI) form instead of the full one"
    )
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: a random seed)")
    parser.add_argument(
        "--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS), help="run just these scenarios"
    )
    args = parser.parse_args(argv)
    scale = REDUCED if args.reduced else FULL
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(format_table(["", ""], [*environment(), ("form", scale.name), ("seed", str(seed))]))
    print()
    print(table(anyio.run(partial(run, scale, seed=seed, only=args.only))))


if __name__ == "__main__":
    main()
