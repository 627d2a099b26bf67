"""The crash contract of issue 2 under real chaos: SIGKILLed importers, a PostgreSQL that goes away,
transcripts growing under the importer. Every scenario must end exactly where a clean run ends.

Reduced form by default (CI); ``MNEMO_CHAOS_FULL=1`` runs the full form, ``MNEMO_CHAOS_SEED`` replays.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..postgres_server import PostgresServer
from .harness import ChaosResult, Scale
from .scenarios import appends_while_importing, database_outages, seed_from_env, sigkill_importer

# Read at collection: the autouse fixture strips MNEMO_* from the environment before each test.
SCALE = Scale.from_env()
SEED = seed_from_env()

pytestmark = [pytest.mark.chaos, pytest.mark.anyio, pytest.mark.timeout(3600)]


def _assert_exact(result: ChaosResult) -> None:
    assert (result.lost, result.duplicated, result.differences) == (0, 0, []), "; ".join(
        result.differences + result.notes
    )


async def test_sigkill__repeated_kills_then_a_clean_run_store_exactly_what_one_clean_run_does(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    _assert_exact(await sigkill_importer(postgres, tmp_path, SCALE, seed=SEED))


async def test_database_outage__daemon_resumes_by_itself_and_loses_nothing(tmp_path: Path) -> None:
    result = await database_outages(tmp_path, SCALE, seed=SEED)
    _assert_exact(result)
    assert len(result.recovery_seconds) == SCALE.outages


async def test_appends__lines_written_while_importing_end_up_exactly_as_a_clean_run(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    _assert_exact(await appends_while_importing(postgres, tmp_path, SCALE, seed=SEED))
