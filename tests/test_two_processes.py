"""Two importers as two processes on the same transcripts and database, while the files grow: the
database ends exactly as the generator's manifest declares (no line lost, none stored or counted
twice), and neither process gives up."""

from __future__ import annotations

import random
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from testkit.chaos.harness import build_corpus, importer_process, wait_for_files
from testkit.chaos.scenarios import seed_from_env
from testkit.chaos.writer import Writer
from testkit.verdict import compare, snapshot

pytestmark = pytest.mark.anyio
SEED = seed_from_env()


async def test_two_daemons__same_files_same_database_store_exactly_what_was_declared(
    database_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "projects"
    manifest = build_corpus(root, mb=1, seed=SEED)
    writer = Writer(root, random.Random(SEED + 1), manifest, seconds=2)
    with (tmp_path / "importers.log").open("ab") as log:
        async with (
            importer_process(["run", str(root)], database_url, log) as first,
            importer_process(["run", str(root)], database_url, log) as second,
        ):
            await anyio.to_thread.run_sync(writer.run)
            assert await wait_for_files(database_url, manifest.expected().offsets, proc=first)
            assert (first.returncode, second.returncode) == (None, None)
            got = await snapshot(database_url)
    verdict = compare(manifest.expected(), got)
    assert verdict.exact, f"{verdict.differences}; seed {SEED}; log {tmp_path / 'importers.log'}"
    assert writer.lines > 0
