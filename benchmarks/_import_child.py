"""One importer pass in a process of its own, so its peak RSS is the importer's and nothing else's.

Usage: ``python -m benchmarks._import_child DSN ROOT [--telemetry]``; prints one JSON object on stdout.

With ``--telemetry`` the pass runs as the daemon runs it: the SDK configured from the environment by
:func:`mnemo_otel.telemetry.setup.configure_telemetry` (so ``OTEL_SDK_DISABLED=true`` turns it off and
``OTEL_EXPORTER_OTLP_ENDPOINT`` says where it goes), the importer observed by ``ImportTelemetry``, and
the providers flushed at the end (the flush is outside the timed import).
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

from mnemo_otel.importer import Importer
from mnemo_otel.model import ImportObserver
from mnemo_otel.state import LoopState
from mnemo_otel.store.postgres import PostgresSink
from mnemo_otel.telemetry.instruments import ImportTelemetry
from mnemo_otel.telemetry.setup import configure_telemetry


async def _measure(dsn: str, root: Path, telemetry: bool) -> dict[str, float | int]:
    sink = await PostgresSink.open(dsn)  # migrates: the clock starts on a ready, empty schema
    try:
        state = LoopState()
        observer: ImportObserver | None = (
            ImportTelemetry(state, volumes={"watched": root}) if telemetry else None
        )
        importer = Importer(sink, roots=[root], observer=observer, state=state)
        started = time.perf_counter()
        summary = await importer.import_once()
        seconds = time.perf_counter() - started
    finally:
        await sink.aclose()
    figures = summary.as_dict()
    return {
        "seconds": seconds,
        "files": summary.files,
        "entries": int(str(figures["entries_stored"])),
        "quarantined": int(str(figures["quarantined"])),
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._import_child")
    parser.add_argument("dsn")
    parser.add_argument("root", type=Path)
    parser.add_argument("--telemetry", action="store_true", help="configure the SDK as the daemon does")
    args = parser.parse_args()
    if not args.telemetry:
        sys.stdout.write(json.dumps(anyio.run(_measure, args.dsn, args.root, False)) + "\n")
        return
    handles = configure_telemetry(log_level=logging.WARNING, log_stream=sys.stderr)
    try:
        figures = anyio.run(_measure, args.dsn, args.root, True)
    finally:
        handles.shutdown()
    figures["telemetry_enabled"] = int(handles.enabled)
    sys.stdout.write(json.dumps(figures) + "\n")


if __name__ == "__main__":
    main()
