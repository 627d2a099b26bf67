"""Telemetry overhead: the same import with telemetry on vs ``OTEL_SDK_DISABLED=true`` (goal <= 5 %).

Each import runs in a child process (``benchmarks._import_child --telemetry``) on a fresh database of one
server: with telemetry on, the SDK is configured by ``configure_telemetry`` exactly as the daemon's is
and exports over OTLP/HTTP to the real collector running the shipped config (which remote-writes to
Prometheus), or with ``--target sink`` to the test OTLP sink. Modes alternate, ``--runs`` each; the
medians and their ratio are reported.

Usage: ``python -m benchmarks.telemetry_overhead [--mb N] [--runs N] [--target collector|sink]``.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testkit.otlp_sink import running_sink
from testkit.postgres_server import PostgresServer
from testkit.stack import running_backends
from testkit.synthetic import write_corpus

from ._common import MB, base_env, create_database, import_in_child, median, verdict
from ._report import environment, format_table

__all__ = ("Overhead", "main", "measure", "table")

GOAL_RATIO = 1.05


@dataclass
class Overhead:
    mb: float
    target: str
    entries: int = 0
    on_seconds: list[float] = field(default_factory=list)
    off_seconds: list[float] = field(default_factory=list)
    on_rss_kib: list[int] = field(default_factory=list)
    off_rss_kib: list[int] = field(default_factory=list)
    untraced_seconds: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return median(self.on_seconds) / median(self.off_seconds)


@contextlib.contextmanager
def _endpoint(target: str, workdir: Path) -> Iterator[str]:
    if target == "sink":
        with running_sink() as sink:
            yield sink.url
    else:
        with running_backends(workdir) as backends:
            yield backends.collector.otlp_http_url


def measure(
    mb: float, *, runs: int = 3, target: str = "collector", seed: int = 3, diagnose: bool = False
) -> Overhead:
    """``diagnose`` adds a third mode, telemetry on with ``OTEL_TRACES_SAMPLER=always_off`` (metrics and
    logs exported, no span recorded): how much of the overhead is tracing."""
    result = Overhead(mb=mb, target=target)
    with tempfile.TemporaryDirectory(prefix="mnemo-bench-otel-") as tmp:
        root = Path(tmp) / "projects"
        write_corpus(root, target_bytes=int(mb * MB), seed=seed)
        server = PostgresServer()
        try:
            server.start()
            with _endpoint(target, Path(tmp)) as endpoint:
                modes = ["on", "off", *(["untraced"] if diagnose else [])]
                for run in range(runs):
                    for mode in modes if run % 2 == 0 else modes[::-1]:
                        dsn = create_database(server, f"bench_otel_{mode}_{run}")
                        if mode == "on":
                            env = base_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)
                        elif mode == "untraced":
                            env = base_env(
                                OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_TRACES_SAMPLER="always_off"
                            )
                        else:
                            env = base_env(OTEL_SDK_DISABLED="true")
                        figures = import_in_child(dsn, root, telemetry=True, env=env)
                        if int(figures.get("telemetry_enabled", 0)) != (mode != "off"):
                            raise RuntimeError(f"telemetry mode {mode} did not take effect: {figures}")
                        if mode == "untraced":
                            result.untraced_seconds.append(figures["seconds"])
                            continue
                        (result.on_seconds if mode == "on" else result.off_seconds).append(figures["seconds"])
                        (result.on_rss_kib if mode == "on" else result.off_rss_kib).append(
                            int(figures["max_rss_kib"])
                        )
                        result.entries = int(figures["entries"])
        finally:
            server.destroy()
    return result


def table(r: Overhead) -> str:
    rows = [
        (
            f"on (OTLP/HTTP to the {r.target})",
            f"{median(r.on_seconds):.2f}",
            ", ".join(f"{s:.2f}" for s in r.on_seconds),
            f"{r.mb / median(r.on_seconds):.1f}",
            f"{max(r.on_rss_kib) / 1024:.0f}",
        ),
        (
            "OTEL_SDK_DISABLED=true",
            f"{median(r.off_seconds):.2f}",
            ", ".join(f"{s:.2f}" for s in r.off_seconds),
            f"{r.mb / median(r.off_seconds):.1f}",
            f"{max(r.off_rss_kib) / 1024:.0f}",
        ),
    ]
    if r.untraced_seconds:
        rows.insert(
            1,
            (
                "on, OTEL_TRACES_SAMPLER=always_off",
                f"{median(r.untraced_seconds):.2f}",
                ", ".join(f"{s:.2f}" for s in r.untraced_seconds),
                f"{r.mb / median(r.untraced_seconds):.1f}",
                "-",
            ),
        )
    overhead = (r.ratio - 1) * 100
    untraced = (
        [f"ratio on without spans / off: {median(r.untraced_seconds) / median(r.off_seconds):.3f}"]
        if r.untraced_seconds
        else []
    )
    return "\n".join(
        [
            (
                f"telemetry_overhead: {r.mb:.0f} MB corpus, {r.entries:,} entries, {len(r.on_seconds)} runs each, "
                "alternating, fresh database each, each import in its own process"
            ),
            format_table(["telemetry", "median s", "runs s", "MB/s", "peak RSS MiB"], rows),
            f"ratio on / off: {r.ratio:.3f} ({overhead:+.1f} %; goal <= +5 %: {verdict(r.ratio <= GOAL_RATIO)})",
            *untraced,
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.telemetry_overhead", description=__doc__)
    parser.add_argument("--mb", type=float, default=30, help="corpus size in MB (default 30)")
    parser.add_argument("--runs", type=int, default=3, help="imports per mode (default 3)")
    parser.add_argument("--target", choices=["collector", "sink"], default="collector")
    parser.add_argument(
        "--diagnose", action="store_true", help="also run with spans off (OTEL_TRACES_SAMPLER=always_off)"
    )
    args = parser.parse_args(argv)
    print(format_table(["", ""], environment()))
    print()
    print(table(measure(args.mb, runs=args.runs, target=args.target, diagnose=args.diagnose)))


if __name__ == "__main__":
    main()
