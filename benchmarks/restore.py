"""``mnemo-otel restore`` and its drill: throughput, and what keeping every line exactly costs in storage.

1. A corpus: the real Claude Code's everyday scenarios (its transcripts as it writes them) plus a
   generated corpus up to ``--mb``. Imported in a child process, telemetry off.
2. Storage: the archive's bytes (every ``mnemo`` relation with its indexes and TOAST) per source byte,
   split into the exact lines (``mnemo.lines`` and its pieces) and the rest (entries' jsonb, indexes).
   Goal <= 1.0.
3. ``restore --all --to DIR`` and ``restore --check``, each ``--runs`` times as a user runs them
   (process start to exit), in MB/s of restored bytes; every restored file is compared with its
   source (sha256) once.

Usage: ``python -m benchmarks.restore [--mb N] [--runs N] [--seed N] [--no-client]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
import asyncpg

from testkit.claude_api import running_fake_api
from testkit.claude_code import ClaudeHome
from testkit.claude_formats import run_everyday_scenarios
from testkit.postgres_server import PostgresServer
from testkit.synthetic import write_corpus

from ._common import MB, base_env, create_database, import_in_child, median, verdict
from ._report import REPO, environment, format_table

GOAL_STORAGE_RATIO = 1.0

_SIZES = """
SELECT coalesce(sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.relname IN ('blocks', 'block_pieces', 'line_copies')), 0),
       coalesce(sum(pg_total_relation_size(c.oid)), 0)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'mnemo' AND c.relkind IN ('r', 'm')
"""


@dataclass(frozen=True, slots=True)
class Figures:
    source_bytes: int
    restorable_bytes: int
    files: int
    import_seconds: float
    exact_bytes: int
    archive_bytes: int
    restore_seconds: list[float]
    check_seconds: list[float]

    def mb_s(self, seconds: float) -> float:
        return self.restorable_bytes / MB / seconds


def measure(mb: float, runs: int, *, seed: int, with_client: bool) -> Figures:
    with tempfile.TemporaryDirectory(prefix="mnemo-bench-restore-") as tmp:
        root = Path(tmp) / "home" / ".claude" / "projects"
        if with_client:
            with running_fake_api() as api:
                run_everyday_scenarios(api, ClaudeHome(Path(tmp) / "home", api.url))
        write_corpus(root, target_bytes=int(mb * MB), seed=seed)
        sources = sorted(root.rglob("*.jsonl"))
        source_bytes = sum(p.stat().st_size for p in sources)
        prefixes = {p: _committed_prefix_digest(p) for p in sources}
        server = PostgresServer()
        try:
            server.start()
            dsn = create_database(server, "bench_restore")
            imported = import_in_child(dsn, root, telemetry=False)
            exact_bytes, archive_bytes = anyio.run(_sizes, dsn)
            restore_seconds, check_seconds = [], []
            for run in range(runs):
                to = Path(tmp) / f"restored-{run}"
                to.mkdir()
                restore_seconds.append(_timed(dsn, "restore", "--all", "--to", str(to), "--json"))
                if run == 0:
                    _compare(to, prefixes)
                shutil.rmtree(to)
                check_seconds.append(_timed(dsn, "restore", "--check", "--json"))
        finally:
            server.destroy()
    restorable = sum(size for size, _ in prefixes.values())
    return Figures(
        source_bytes,
        restorable,
        sum(1 for size, _ in prefixes.values() if size),
        imported["seconds"],
        exact_bytes,
        archive_bytes,
        restore_seconds,
        check_seconds,
    )


def _committed_prefix_digest(path: Path) -> tuple[int, str]:
    data = path.read_bytes()
    prefix = data[: data.rfind(b"\n") + 1]
    return len(prefix), hashlib.sha256(prefix).hexdigest()


async def _sizes(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM ANALYZE")
        row = await conn.fetchrow(_SIZES)
    finally:
        await conn.close()
    assert row is not None
    return int(row[0]), int(row[1])


def _timed(dsn: str, *args: str) -> float:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "mnemo_otel", *args],
        cwd=REPO,
        env=base_env(MNEMO_DATABASE_URL=dsn, OTEL_SDK_DISABLED="true"),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"mnemo-otel {' '.join(args)} exited {result.returncode}:\n{result.stdout[-2000:]}"
        )
    json.loads(result.stdout)
    return seconds


def _compare(to: Path, prefixes: dict[Path, tuple[int, str]]) -> None:
    for path, (size, digest) in prefixes.items():
        if not size:
            continue
        copy = to / path.relative_to("/")
        if hashlib.sha256(copy.read_bytes()).hexdigest() != digest:
            raise RuntimeError(f"{copy} differs from its source")


def report(f: Figures) -> str:
    ratio = f.archive_bytes / f.source_bytes
    restore, check = median(f.restore_seconds), median(f.check_seconds)
    rows = [
        (
            "corpus",
            f"{f.source_bytes / MB:.0f} MB in {f.files} files ({f.restorable_bytes / MB:.0f} MB committed)",
        ),
        (
            "import (child, telemetry off)",
            f"{f.import_seconds:.1f} s, {f.source_bytes / MB / f.import_seconds:.1f} MB/s",
        ),
        (
            "archive bytes per source byte",
            f"{ratio:.2f} (goal <= {GOAL_STORAGE_RATIO}: {verdict(ratio <= GOAL_STORAGE_RATIO)})",
        ),
        ("  of which exact bytes (blocks)", f"{f.exact_bytes / f.source_bytes:.2f}"),
        (
            "  the rest (entries' jsonb, quarantine, indexes)",
            f"{(f.archive_bytes - f.exact_bytes) / f.source_bytes:.2f}",
        ),
        (
            "restore --all (process wall)",
            f"{f.mb_s(restore):.0f} MB/s (median of {' '.join(f'{s:.1f}' for s in f.restore_seconds)} s)",
        ),
        (
            "restore --check (process wall)",
            f"{f.mb_s(check):.0f} MB/s (median of {' '.join(f'{s:.1f}' for s in f.check_seconds)} s)",
        ),
    ]
    return format_table(["restore", "figure"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.restore", description=__doc__)
    parser.add_argument("--mb", type=float, default=1024, help="generated corpus size in MB (default 1024)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument(
        "--no-client", action="store_true", help="leave out the real Claude Code's transcripts"
    )
    args = parser.parse_args()
    print(format_table(["machine", ""], environment()))
    print(report(measure(args.mb, args.runs, seed=args.seed, with_client=not args.no_client)))


if __name__ == "__main__":
    main()
