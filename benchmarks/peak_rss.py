"""Peak RSS of one import of >= 1 GB of generated transcripts (goal: <= 150 MB).

The import runs in a child process (``benchmarks._import_child --telemetry``, telemetry on with the
default SDK settings and exported to a live OTLP receiver that does nothing), so ``ru_maxrss`` is the
importer's own high-water mark; it also reports the spans that ended and those a full batch queue
dropped (goal: none).

Usage: ``python -m benchmarks.peak_rss [--gb N]``. ``--gb`` shrinks the corpus for a quick look; the
recorded figure (BENCHMARKS.md) is at 1 GB.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from testkit.null_receiver import running_null_receiver
from testkit.postgres_server import PostgresServer
from testkit.synthetic import write_corpus

from ._common import MB, base_env, create_database, import_in_child, verdict
from ._report import environment, format_table

__all__ = ("PeakRss", "main", "measure", "table")

GOAL_MIB = 150.0


@dataclass(frozen=True, slots=True)
class PeakRss:
    corpus_bytes: int
    files: int
    entries: int
    seconds: float
    max_rss_kib: int
    generate_seconds: float
    spans_ended: int = 0
    spans_dropped: int = 0
    cpu_seconds: float = 0.0

    @property
    def max_rss_mib(self) -> float:
        return self.max_rss_kib / 1024


def measure(gb: float, *, seed: int = 11) -> PeakRss:
    with tempfile.TemporaryDirectory(prefix="mnemo-bench-rss-") as tmp:
        root = Path(tmp) / "projects"
        started = time.monotonic()
        corpus_bytes = write_corpus(root, target_bytes=int(gb * (1 << 30)), seed=seed)
        generate_seconds = time.monotonic() - started
        server = PostgresServer()
        try:
            server.start()
            dsn = create_database(server, "bench_peak_rss")
            with running_null_receiver() as receiver:
                env = base_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url)
                figures = import_in_child(dsn, root, telemetry=True, env=env)
        finally:
            server.destroy()
    return PeakRss(
        corpus_bytes=corpus_bytes,
        files=int(figures["files"]),
        entries=int(figures["entries"]),
        seconds=float(figures["seconds"]),
        max_rss_kib=int(figures["max_rss_kib"]),
        generate_seconds=generate_seconds,
        spans_ended=int(figures["spans_ended"]),
        spans_dropped=int(figures["spans_dropped"]),
        cpu_seconds=float(figures["cpu_seconds"]),
    )


def table(result: PeakRss) -> str:
    met = result.max_rss_mib <= GOAL_MIB
    rows = [
        (
            (
                f"{result.corpus_bytes / (1 << 30):.2f} GiB ({result.corpus_bytes / MB:,.0f} MB), "
                f"{result.files:,} files"
            ),
            f"{result.entries:,}",
            f"{result.seconds:.1f}",
            f"{result.corpus_bytes / MB / result.seconds:.1f}",
            f"{result.max_rss_mib:.0f}",
            f"<= {GOAL_MIB:.0f} MiB: {verdict(met)}",
            f"{result.spans_dropped} of {result.spans_ended:,}",
        )
    ]
    headers = ["peak_rss corpus", "entries", "import s", "MB/s", "peak RSS MiB", "goal", "spans dropped"]
    note = (
        "telemetry on (SDK defaults, OTLP/HTTP to a null receiver); one import_once in a child process; "
        f"CPU {result.cpu_seconds:.1f} s"
    )
    if result.corpus_bytes < 1 << 30:
        note += "; NOTE: below 1 GiB (--gb), not the recorded figure"
    return "\n".join([format_table(headers, rows), note])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peak_rss", description=__doc__)
    parser.add_argument(
        "--gb", type=float, default=1.0, help="corpus size in GiB (default 1: the recorded figure)"
    )
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    print(format_table(["", ""], environment()))
    print()
    print(table(measure(args.gb, seed=args.seed)))


if __name__ == "__main__":
    main()
