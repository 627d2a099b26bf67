"""One importer pass in a process of its own, so its peak RSS is the importer's and nothing else's.

Usage: ``python -m benchmarks._import_child DSN ROOT [--telemetry] [--host ID]``; prints one JSON object
on stdout. ``--host`` imports as that host (default: this machine's id, as the CLI's).

With ``--telemetry`` the pass runs as the daemon runs it: the SDK configured from the environment by
:func:`mnemo_otel.telemetry.setup.configure_telemetry` (so ``OTEL_SDK_DISABLED=true`` turns it off and
``OTEL_EXPORTER_OTLP_ENDPOINT`` says where it goes), the importer observed by ``ImportTelemetry``, and
the providers flushed at the end (the flush is outside the timed import). Besides wall seconds it
reports the process's CPU seconds over the import (all threads) and, with telemetry on, the spans that
ended, reached the exporter, or were dropped by a full queue.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from pathlib import Path

import anyio

from mnemo_otel.daemon import settle_heap
from mnemo_otel.importer import Importer
from mnemo_otel.model import ImportObserver
from mnemo_otel.state import LoopState
from mnemo_otel.store.postgres import PostgresSink
from mnemo_otel.telemetry.instruments import ImportTelemetry
from mnemo_otel.telemetry.setup import configure_telemetry


async def _measure(dsn: str, root: Path, telemetry: bool, host: str | None) -> dict[str, float | int]:
    sink = await PostgresSink.open(dsn, host_id=host)  # migrates: the clock starts on a ready, empty schema
    settle_heap()  # as the CLI does once its sink is open
    try:
        state = LoopState()
        observer: ImportObserver | None = (
            ImportTelemetry(state, volumes={"watched": root}) if telemetry else None
        )
        importer = Importer(sink, roots=[root], observer=observer, state=state)
        cpu_before = _cpu()
        started = time.perf_counter()
        summary = await importer.import_once()
        seconds = time.perf_counter() - started
        cpu = _cpu() - cpu_before
    finally:
        await sink.aclose()
    figures = summary.as_dict()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "files": summary.files,
        "entries": int(str(figures["entries_stored"])),
        "quarantined": int(str(figures["quarantined"])),
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def _cpu() -> float:
    """CPU seconds of this process, every thread (the SDK's export threads included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._import_child")
    parser.add_argument("dsn")
    parser.add_argument("root", type=Path)
    parser.add_argument("--telemetry", action="store_true", help="configure the SDK as the daemon does")
    parser.add_argument("--host", default=None, help="the host id to import as")
    args = parser.parse_args()
    if not args.telemetry:
        sys.stdout.write(json.dumps(anyio.run(_measure, args.dsn, args.root, False, args.host)) + "\n")
        return
    handles = configure_telemetry(log_level=logging.WARNING, log_stream=sys.stderr)
    try:
        figures = anyio.run(_measure, args.dsn, args.root, True, args.host)
    finally:
        # A long grace: every span queued is counted as exported or dropped, none as still queued.
        handles.shutdown(grace=60)
    figures["telemetry_enabled"] = int(handles.enabled)
    figures["spans_ended"] = handles.ended_spans.count
    figures["spans_exported"] = handles.delivery.spans_exported
    figures["spans_dropped"] = handles.spans_dropped
    figures["exports_failed"] = handles.delivery.failed
    sys.stdout.write(json.dumps(figures) + "\n")


if __name__ == "__main__":
    main()
