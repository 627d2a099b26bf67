"""``python -m benchmarks``: every benchmark in one go, one table each, after the machine facts.

Usage: ``python -m benchmarks [--mb N] [--reduced-chaos]``.
"""

from __future__ import annotations

import argparse
import random
from functools import partial

import anyio

from tests.chaos.harness import FULL, REDUCED

from . import chaos, import_throughput
from ._report import environment, format_table


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--mb", type=float, default=50, help="import throughput corpus in MB (default 50)")
    parser.add_argument("--reduced-chaos", action="store_true", help="run the chaos suite in its CI form")
    args = parser.parse_args()
    seed = random.randrange(1 << 30)
    scale = REDUCED if args.reduced_chaos else FULL
    print(format_table(["", ""], [*environment(), ("chaos form", scale.name), ("chaos seed", str(seed))]))
    print()
    print(import_throughput.table(import_throughput.measure(args.mb)))
    print()
    print(chaos.table(anyio.run(partial(chaos.run, scale, seed=seed))))


if __name__ == "__main__":
    main()
