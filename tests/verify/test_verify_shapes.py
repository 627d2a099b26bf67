"""``run_verify`` on every real-world transcript shape and every kind of damage (the generator's
manifest), through real worker processes and small segments, so segment boundaries fall everywhere."""

from __future__ import annotations

import random
from pathlib import Path

import asyncpg
import pytest

from mnemo_otel.settings import ImportSettings
from mnemo_otel.store.postgres import PostgresSink
from mnemo_otel.verify.repair import repair_missing
from mnemo_otel.verify.run import VerifyOptions, run_verify
from testkit.importing import import_once
from testkit.manifest import Manifest
from testkit.shapes import write_hostile_corpus

pytestmark = pytest.mark.anyio

# Worker processes (not the in-process shortcut), and segments far smaller than the files.
PROCESSES = VerifyOptions(workers=2, in_process_bytes=0, segment_bytes=16 * 1024)


def _counts(manifest: Manifest) -> tuple[int, int, int]:
    outcomes = manifest.lines_by_outcome
    quarantined = sum(n for outcome, n in outcomes.items() if outcome.startswith("quarantined:"))
    stored = outcomes["stored"] + outcomes["duplicate"]
    return stored + quarantined, stored, quarantined


async def test_verify__every_shape_is_found_stored_and_exactly_the_removed_rows_are_missing(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    manifest = Manifest()
    write_hostile_corpus(transcripts, manifest, mb=0.3, seed=5)
    await import_once(sink, transcripts)

    report = await run_verify(sink, [transcripts], PROCESSES)
    lines, stored, quarantined = _counts(manifest)
    assert (report.lines, report.stored, report.quarantined, report.missing) == (
        lines,
        stored,
        quarantined,
        0,
    )
    assert report.files == len([p for p in manifest.paths if p.exists()])
    assert report.pending_bytes > 0  # the corpus's unterminated tail: pending, not missing
    assert report.unreadable == {}

    keys = [r["key"] for r in await db.fetch("SELECT key FROM mnemo.entries ORDER BY key")]
    removed = set(random.Random(1).sample(keys, 7))
    await db.execute("DELETE FROM mnemo.entries WHERE key = ANY($1::text[])", sorted(removed))
    bad = await db.fetchrow(
        "DELETE FROM mnemo.quarantine WHERE id = (SELECT min(id) FROM mnemo.quarantine) RETURNING *"
    )
    assert bad is not None

    report = await run_verify(sink, [transcripts], PROCESSES)
    assert report.missing == 8
    found = {m.key for m in report.all_missing}
    assert found == removed | {f"sha256:{bad['line_sha256']}"}

    repaired = await repair_missing(sink, report.all_missing, settings=ImportSettings(), trace_id="ab" * 16)
    assert repaired == report.missing == 8  # a key seen on two lines (a resumed session) is stored once
    after = await run_verify(sink, [transcripts], PROCESSES)
    assert (after.missing, after.stored, after.quarantined) == (0, stored, quarantined)
    traces = {
        r[0]
        for r in await db.fetch(
            "SELECT import_trace_id FROM mnemo.entries WHERE key = ANY($1::text[])", sorted(removed)
        )
    }
    assert traces == {"ab" * 16}


async def test_verify__in_process_and_worker_processes_agree(sink: PostgresSink, transcripts: Path) -> None:
    manifest = Manifest()
    write_hostile_corpus(transcripts, manifest, mb=0.2, seed=8)
    await import_once(sink, transcripts)
    threaded = await run_verify(sink, [transcripts], VerifyOptions())
    processes = await run_verify(sink, [transcripts], PROCESSES)
    fields = ("files", "lines", "stored", "quarantined", "pending_bytes", "missing")
    assert [getattr(threaded, f) for f in fields] == [getattr(processes, f) for f in fields]


async def test_scrub_mode__checks_only_below_each_checkpoint(
    sink: PostgresSink, db: asyncpg.Connection, transcripts: Path
) -> None:
    manifest = Manifest()
    write_hostile_corpus(transcripts, manifest, mb=0.2, seed=9)
    await import_once(sink, transcripts)
    newest = max(manifest.paths, key=lambda p: p.stat().st_size if p.exists() else 0)
    with newest.open("ab") as f:  # appended after the import: the live importer's, not missing
        f.write(b'{"type":"user","uuid":"appended-later"}\n')
    scrub = await run_verify(sink, [transcripts], VerifyOptions(committed_only=True))
    assert scrub.missing == 0
    everything = await run_verify(sink, [transcripts], VerifyOptions())
    assert [m.key for m in everything.all_missing] == ["appended-later"]
