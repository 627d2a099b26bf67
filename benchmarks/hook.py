"""The hook's cost to Claude Code: wall time per call of the real ``mnemo-otel hook`` process, from
spawn to exit (interpreter start, imports, reading stdin, the fsynced append), as Claude Code runs
it at every session start, stop and end. Compared with a bare ``python -c pass`` (the floor) and,
for scale, an interpreter that only builds the settings model every other command starts with
(what the hook skips).

Usage: ``python -m benchmarks.hook [--calls N]`` (default 30).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from ._common import base_env
from ._report import environment, format_table

__all__ = ("main", "measure", "table")

PAYLOAD = json.dumps(
    {
        "session_id": "0b9e5c8e-1111-4c4c-9d9d-000000000001",
        "transcript_path": "/home/user/.claude/projects/-w/0b9e5c8e-1111-4c4c-9d9d-000000000001.jsonl",
        "cwd": "/w",
        "hook_event_name": "Stop",
        "prompt_id": "p-1",
        "last_assistant_message": "An answer of a few hundred characters. " * 10,
    }
).encode()


def console_script() -> list[str]:
    script = Path(sys.executable).parent / "mnemo-otel"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mnemo_otel"]


def _timed(command: Sequence[str], stdin: bytes, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, input=stdin, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or done.stdout:
        raise RuntimeError(f"{command[0]} exited {done.returncode}: {done.stdout!r} {done.stderr!r}")
    return elapsed


def measure(calls: int) -> dict[str, list[float]]:
    settings_only = "from mnemo_otel.settings import Settings; Settings()"
    results: dict[str, list[float]] = {
        "mnemo-otel hook": [],
        "python -c pass": [],
        "the settings model alone": [],
    }
    with tempfile.TemporaryDirectory(prefix="mnemo-bench-hook-") as tmp:
        env = base_env(MNEMO_DATA_DIR=tmp)
        hook = [*console_script(), "hook"]
        _timed(hook, PAYLOAD, env)  # warm: bytecode written, page cache filled
        for _ in range(calls):
            results["mnemo-otel hook"].append(_timed(hook, PAYLOAD, env))
            results["python -c pass"].append(_timed([sys.executable, "-c", "pass"], b"", env))
        for _ in range(max(3, calls // 5)):
            results["the settings model alone"].append(
                _timed([sys.executable, "-c", settings_only], b"", env)
            )
        spooled = (Path(tmp) / "announcements" / "spool.jsonl").read_bytes().count(b"\n") - 1
        if spooled != calls + 1:
            raise RuntimeError(f"{spooled} records spooled for {calls + 1} calls")
    return results


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def table(results: dict[str, list[float]]) -> str:
    rows = [
        (name, len(values), f"{statistics.median(values) * 1000:.1f}", f"{_p95(values) * 1000:.1f}")
        for name, values in results.items()
    ]
    return format_table(["process (spawn to exit)", "calls", "median ms", "p95 ms"], rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hook", description=__doc__)
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args(argv)
    print(format_table(["", ""], environment()))
    print()
    print(table(measure(args.calls)))


if __name__ == "__main__":
    main()
