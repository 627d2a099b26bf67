"""One importer pass in a process of its own, so its peak RSS is the importer's and nothing else's.

Usage: ``python -m benchmarks._import_child DSN ROOT``; prints one JSON object on stdout.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import anyio

from mnemo_otel.importer import Importer
from mnemo_otel.store.postgres import PostgresSink


async def _measure(dsn: str, root: Path) -> dict[str, float | int]:
    sink = await PostgresSink.open(dsn)  # migrates: the clock starts on a ready, empty schema
    try:
        importer = Importer(sink, roots=[root])
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
    dsn, root = sys.argv[1], Path(sys.argv[2])
    sys.stdout.write(json.dumps(anyio.run(_measure, dsn, root)) + "\n")


if __name__ == "__main__":
    main()
