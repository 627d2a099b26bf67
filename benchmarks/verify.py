"""``mnemo-otel verify`` throughput, and the live import's latency while the daemon scrubs.

1. Throughput (goal: verify's wall time no longer than the json floor's): a generated corpus is
   imported (``benchmarks._import_child``), then ``mnemo-otel verify --json`` runs ``--runs`` times as a
   user runs it (a child process, worker processes for the keying, telemetry off), alternating with
   the json floor: one process that only reads every complete line and parses it with the standard
   ``json`` module. Reported: verify's own duration (discovery to report) and both children's wall
   time (interpreter start-up and exit included), in MB/s of transcript bytes, and their ratio.
2. Latency during a scrub (goal: append -> commit p99 <= 1 s): ``benchmarks.append_latency``'s daemon
   and writer over an imported ``--latency-mb`` corpus, in pairs: scrubbing off
   (``MNEMO_VERIFY__INTERVAL_SECONDS=0``) and scrubbing back to back (``=1``: a new scrub one second
   after the last one ends, so nearly every append lands during one). Alternating, medians reported.

The machine is shared and noisy: compare the paired figures, not one run with another day's.
Usage: ``python -m benchmarks.verify [--gib N] [--runs N] [--latency-mb N] [--appends N] [--pairs N]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from testkit.postgres_server import PostgresServer
from testkit.synthetic import write_corpus

from . import append_latency
from ._common import MB, base_env, create_database, import_in_child, median, verdict
from ._report import REPO, environment, format_table

__all__ = ("Throughput", "main", "measure_latency", "measure_throughput")

GOAL_RATIO = 1.0  # json floor wall / verify wall

# The floor: every complete, non-blank line parsed by the standard library, one process, nothing else.
JSON_FLOOR = """
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).rglob("*.jsonl")):
    with path.open("rb") as f:
        for line in f:
            if line.endswith(b"\\n") and line.strip():
                json.loads(line)
"""


@dataclass(frozen=True, slots=True)
class Throughput:
    corpus_bytes: int
    lines: int
    import_seconds: float
    verify_seconds: list[float]
    wall_seconds: list[float]
    cpu_seconds: list[float]  # the verify process and its worker processes, user + system
    floor_seconds: list[float]  # the json floor's wall time, process start to exit

    def mb_s(self, seconds: float) -> float:
        return self.corpus_bytes / MB / seconds


def measure_throughput(gib: float, runs: int, *, seed: int = 17) -> Throughput:
    with tempfile.TemporaryDirectory(prefix="mnemo-bench-verify-") as tmp:
        root = Path(tmp) / "projects"
        corpus_bytes = write_corpus(root, target_bytes=int(gib * (1 << 30)), seed=seed)
        server = PostgresServer()
        try:
            server.start()
            dsn = create_database(server, "bench_verify")
            imported = import_in_child(dsn, root, telemetry=False)
            seconds, walls, cpus, floors, lines = [], [], [], [], 0
            for run in range(runs):
                if run % 2:
                    floors.append(_json_floor(root))
                started, cpu = time.monotonic(), _children_cpu()
                report = _verify(dsn, root)
                walls.append(time.monotonic() - started)
                cpus.append(_children_cpu() - cpu)
                if run % 2 == 0:
                    floors.append(_json_floor(root))
                seconds.append(float(str(report["duration_seconds"])))
                lines = int(str(report["lines"]))
                if report["missing"] != 0:
                    raise RuntimeError(f"verify found {report['missing']} missing lines after an import")
        finally:
            server.destroy()
    return Throughput(corpus_bytes, lines, imported["seconds"], seconds, walls, cpus, floors)


def _json_floor(root: Path) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", JSON_FLOOR, str(root)], check=True, env=base_env())
    return time.monotonic() - started


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped descendants: the workers too
    return usage.ru_utime + usage.ru_stime


def _verify(dsn: str, root: Path) -> dict[str, object]:
    env = base_env(MNEMO_DATABASE_URL=dsn, OTEL_SDK_DISABLED="true")
    result = subprocess.run(
        [sys.executable, "-m", "mnemo_otel", "verify", "--json", str(root)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 5):
        raise RuntimeError(f"verify failed ({result.returncode}):\n{result.stderr[-4000:]}")
    report: dict[str, object] = json.loads(result.stdout)
    return report


def throughput_table(t: Throughput) -> str:
    own, wall, cpu = median(t.verify_seconds), median(t.wall_seconds), median(t.cpu_seconds)
    ratios = sorted(f / w for f, w in zip(t.floor_seconds, t.wall_seconds, strict=True))
    ratio = median(ratios)
    rows = [
        (
            "verify (its own duration)",
            f"{own:.2f}",
            " ".join(f"{s:.2f}" for s in t.verify_seconds),
            f"{t.mb_s(own):.0f}",
        ),
        (
            "verify (child wall time)",
            f"{wall:.2f}",
            " ".join(f"{s:.2f}" for s in t.wall_seconds),
            f"{t.mb_s(wall):.0f}",
        ),
        (
            "json floor (child wall time)",
            f"{median(t.floor_seconds):.2f}",
            " ".join(f"{s:.2f}" for s in t.floor_seconds),
            f"{t.mb_s(median(t.floor_seconds)):.0f}",
        ),
        ("import of the same corpus", f"{t.import_seconds:.2f}", "1 run", f"{t.mb_s(t.import_seconds):.1f}"),
        (
            "verify CPU (all processes)",
            f"{cpu:.2f}",
            " ".join(f"{s:.2f}" for s in t.cpu_seconds),
            f"{t.mb_s(cpu):.0f}",
        ),
    ]
    return "\n".join(
        [
            f"verify throughput: {t.corpus_bytes / MB:.0f} MB, {t.lines:,} lines, {len(t.verify_seconds)} runs",
            format_table(["", "median s", "runs s", "MB/s"], rows),
            (
                f"verify / json floor, wall time, median of pair ratios: {ratio:.2f}x the floor's speed "
                f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}; goal >= {GOAL_RATIO:.1f}: {verdict(ratio >= GOAL_RATIO)}); "
                f"{t.mb_s(cpu):.0f} MB per CPU-second"
            ),
        ]
    )


def measure_latency(appends: int, corpus_mb: float, pairs: int) -> dict[str, list[append_latency.Latency]]:
    results: dict[str, list[append_latency.Latency]] = {"scrub off": [], "scrubbing": []}
    for index in range(pairs):
        order = ("scrub off", "scrubbing") if index % 2 == 0 else ("scrubbing", "scrub off")
        for mode in order:
            interval = "0" if mode == "scrub off" else "1"
            results[mode].append(
                append_latency.measure(
                    appends, corpus_mb=corpus_mb, env={"MNEMO_VERIFY__INTERVAL_SECONDS": interval}
                )
            )
    return results


def _p(values: Sequence[float], q: float) -> float:
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))] if values else float("nan")


def latency_table(results: dict[str, list[append_latency.Latency]], corpus_mb: float) -> str:
    rows = []
    p99s: dict[str, float] = {}
    for mode, runs in results.items():
        p50 = median([_p(r.visible_latencies(), 0.5) for r in runs])
        p99 = p99s[mode] = median([_p(r.visible_latencies(), 0.99) for r in runs])
        scrubs = median([r.daemon_log.count("scrub checked") for r in runs])
        rows.append((mode, len(runs), f"{p50 * 1000:.0f}", f"{p99 * 1000:.0f}", f"{scrubs:g}"))
    worst = p99s["scrubbing"]
    return "\n".join(
        [
            (
                f"append -> visible latency during scrubs: {corpus_mb:g} MB imported corpus, "
                f"{results['scrub off'][0].appends} appends per run, runs alternating"
            ),
            format_table(["daemon", "runs", "p50 ms (median)", "p99 ms (median)", "scrubs per run"], rows),
            (
                f"p99 while scrubbing: {worst:.3f} s, {worst / p99s['scrub off']:.2f}x scrub off "
                f"(goal <= {append_latency.GOAL_P99_SECONDS:.0f} s: "
                f"{verdict(worst <= append_latency.GOAL_P99_SECONDS)})"
            ),
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.verify", description=__doc__)
    parser.add_argument("--gib", type=float, default=1.0, help="corpus for the throughput (default 1)")
    parser.add_argument("--runs", type=int, default=3, help="verify runs (default 3)")
    parser.add_argument("--latency-mb", type=float, default=200, help="corpus the daemon scrubs (200)")
    parser.add_argument("--appends", type=int, default=200, help="appends per latency run (200)")
    parser.add_argument(
        "--pairs", type=int, default=2, help="scrub off/on pairs (default 2; 0 skips the latency part)"
    )
    args = parser.parse_args(argv)
    print(format_table(["", ""], environment()))
    print()
    print(throughput_table(measure_throughput(args.gib, args.runs)))
    if args.pairs <= 0:
        return
    print()
    print(latency_table(measure_latency(args.appends, args.latency_mb, args.pairs), args.latency_mb))


if __name__ == "__main__":
    main()
