"""``mnemo-otel verify``: check the whole archive against the files on disk, and repair on request.

The repair runs inside one ``mnemo.verify.repair`` span: its trace id goes on the rows it writes (and
into the report), so a repaired row leads to the repair in Tempo as an imported row leads to its import.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import trace

from .._version import __version__
from ..importer._concurrency import run_all
from ..settings import Settings
from ..store import ledger
from ..store.open import open_sink
from ..store.postgres import PostgresSink, translate_errors
from ..telemetry.instruments import SCOPE
from .content import Diverged, find_diverged
from .repair import repair_missing
from .report import VerifyReport
from .run import VerifyOptions, discovered, discovered_and_announced, run_verify

__all__ = ("SPAN_REPAIR", "SPAN_VERIFY", "verify_command")

SPAN_VERIFY = "mnemo.verify"
SPAN_REPAIR = "mnemo.verify.repair"


async def _keys_and_content(
    sink: PostgresSink, roots: Sequence[Path], options: VerifyOptions, *, announced: bool
) -> tuple[VerifyReport, list[Diverged]]:
    """The key check and the content check side by side: the hashing threads fill the cores while the
    keying processes start and finish, instead of running on one core after them."""
    found = await (discovered_and_announced(sink, roots) if announced else discovered(roots))
    results: list[VerifyReport] = []
    diverged: list[Diverged] = []

    async def keys() -> None:
        results.append(await run_verify(sink, roots, options, found))

    async def content() -> None:
        paths = [path for path, _ in found]
        diverged.extend(await find_diverged(sink, paths, threads=options.workers))

    await run_all(keys, content)
    return results[0], diverged


async def verify_command(
    settings: Settings, roots: Sequence[Path], *, repair: bool, announced: bool = False
) -> VerifyReport:
    """``announced``: also check the transcripts Claude Code's hooks announced outside ``roots`` (the
    whole archive of this host, when no path was named)."""
    sink = await open_sink(settings)
    tracer = trace.get_tracer(SCOPE, __version__)
    options = VerifyOptions(max_line_bytes=settings.imports.max_line_bytes, workers=os.cpu_count() or 2)
    try:
        with tracer.start_as_current_span(SPAN_VERIFY):
            report, diverged = await _keys_and_content(sink, roots, options, announced=announced)
            report.diverged = diverged
        if repair:
            with tracer.start_as_current_span(SPAN_REPAIR) as span:
                context = span.get_span_context()
                trace_id = format(context.trace_id, "032x") if context.is_valid else None
                report.repaired = await repair_missing(
                    sink,
                    report.all_missing,
                    settings=settings.imports,
                    trace_id=trace_id,
                )
                report.trace_id = trace_id
                span.set_attribute("mnemo.verify.repaired", report.repaired)
        async with translate_errors(), sink.connection() as conn:
            totals = await ledger.loss_totals(conn, None)
        report.source_lost = {"events": totals.events, "bytes": totals.lost_bytes}
        return report
    finally:
        await sink.aclose()
