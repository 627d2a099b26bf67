"""The importer against expectations it had no part in: the generator's manifest.

The corpus holds every shape real transcripts have (subagents in both layouts, compaction, snapshots,
queue operations, progress lines, summary-only and empty files) and every kind of damage; the manifest
says, line by line, what each must become.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mnemo_otel.store.postgres import PostgresSink
from testkit.importing import import_once
from testkit.manifest import Manifest
from testkit.shapes import HOSTILE, write_hostile_corpus
from testkit.verdict import compare, snapshot

pytestmark = pytest.mark.anyio


async def test_import__every_real_world_shape_ends_exactly_as_the_generator_declared(
    sink: PostgresSink, database_url: str, transcripts: Path
) -> None:
    manifest = Manifest()
    write_hostile_corpus(transcripts, manifest, mb=0.3, seed=11)

    await import_once(sink, transcripts)

    verdict = compare(manifest.expected(), await snapshot(database_url))
    assert verdict.exact, verdict.differences
    outcomes = manifest.lines_by_outcome
    assert all(outcomes[f"quarantined:{kind}"] > 0 for _, kind in HOSTILE), outcomes
    assert outcomes["duplicate"] > 0 and outcomes["pending"] == 1 and outcomes["blank"] == 2
