"""``python -m benchmarks``: every benchmark in one go, one table each, after the machine facts.

Usage: ``python -m benchmarks [--quick]``. The default is the recorded form: import throughput on
50 MB, telemetry overhead on 30 MB, the collector-down daemon for 10 minutes, 200 appends, peak RSS
at 1 GiB, 5 start-ups, verify on 1 GiB with the live latency during scrubs, and the full chaos suite.
``--quick`` shrinks each (and says so in its table); its figures are not the recorded ones.
"""

from __future__ import annotations

import argparse
import random
from functools import partial

import anyio

from testkit.chaos.harness import FULL, REDUCED

from . import (
    append_latency,
    chaos,
    collector_down,
    import_throughput,
    peak_rss,
    startup,
    telemetry_overhead,
    verify,
)
from ._report import environment, format_table


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, short durations, reduced chaos")
    parser.add_argument("--no-chaos", action="store_true", help="leave out the chaos suite")
    args = parser.parse_args()
    quick = args.quick
    seed = random.randrange(1 << 30)
    scale = REDUCED if quick else FULL
    minutes = 1.0 if quick else 10.0
    print(
        format_table(
            ["", ""], [*environment(), ("form", "quick" if quick else "full"), ("chaos seed", str(seed))]
        )
    )
    print()
    print(import_throughput.table(import_throughput.measure(10 if quick else 50, runs=3 if quick else 5)))
    print()
    print(
        telemetry_overhead.table(
            telemetry_overhead.measure(
                5 if quick else 30, runs=3 if quick else 5, daemon_lines=300 if quick else 1500
            )
        )
    )
    print()
    if quick:
        print(f"collector_down: daemon RSS over {minutes:g} min only (--quick; the recorded run uses 10)")
    print(
        collector_down.table(
            collector_down.measure(
                mb=5 if quick else 20, runs=3, minutes=minutes, every=5, exit_runs=2 if quick else 5
            )
        )
    )
    print()
    print(append_latency.table(append_latency.measure(50 if quick else 200)))
    print()
    print(peak_rss.table(peak_rss.measure(0.05 if quick else 1.0)))
    print()
    print(startup.table(startup.measure(3 if quick else 5)))
    print()
    print(verify.throughput_table(verify.measure_throughput(0.05 if quick else 1.0, 3)))
    print()
    latency_mb = 10 if quick else 100
    pairs = verify.measure_latency(50 if quick else 200, latency_mb, 1 if quick else 2)
    print(verify.latency_table(pairs, latency_mb))
    if not args.no_chaos:
        print()
        print(chaos.table(anyio.run(partial(chaos.run, scale, seed=seed))))


if __name__ == "__main__":
    main()
