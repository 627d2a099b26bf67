"""The crash contract of issue 2 under real chaos: SIGKILLed importers, a PostgreSQL that goes away,
transcripts growing under the importer; and the surroundings failing (issue 6): the collector stopped,
files truncated and replaced, the data volume full, the work loop hung under a supervisor. Every
scenario must end exactly where the generator's manifest says: 0 lost, 0 duplicated.

Reduced form by default (CI); ``MNEMO_CHAOS_FULL=1`` runs the full form. The seed is fixed (printed in
the run's header and in every failure); ``MNEMO_CHAOS_SEED`` picks another.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.chaos.disk import disk_full
from testkit.chaos.harness import ChaosResult, Scale
from testkit.chaos.scenarios import appends_while_importing, database_outages, seed_from_env, sigkill_importer
from testkit.chaos.supervisor import hung_loop_under_supervisor
from testkit.chaos.surroundings import collector_outage, truncate_and_replace
from testkit.postgres_server import PostgresServer

# Read at collection: the autouse fixture strips MNEMO_* from the environment before each test.
SCALE = Scale.from_env()
SEED = seed_from_env()

pytestmark = [pytest.mark.chaos, pytest.mark.anyio, pytest.mark.timeout(3600)]


def _assert_exact(result: ChaosResult) -> None:
    assert (result.lost, result.duplicated, result.differences) == (0, 0, []), "; ".join(
        result.differences + result.notes
    )


async def test_sigkill__repeated_kills_then_a_clean_run_store_exactly_what_the_generator_declared(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    _assert_exact(await sigkill_importer(postgres, tmp_path, SCALE, seed=SEED))


async def test_database_outage__daemon_resumes_by_itself_and_loses_nothing(tmp_path: Path) -> None:
    result = await database_outages(tmp_path, SCALE, seed=SEED)
    _assert_exact(result)
    assert len(result.recovery_seconds) == SCALE.outages


async def test_appends__lines_written_while_importing_end_up_exactly_as_declared(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    _assert_exact(await appends_while_importing(postgres, tmp_path, SCALE, seed=SEED))


async def test_collector_outage__imports_go_on_and_the_heartbeat_resumes_in_prometheus(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    result = await collector_outage(postgres, tmp_path, SCALE, seed=SEED)
    _assert_exact(result)
    assert len(result.recovery_seconds) == 1  # a heartbeat newer than the collector's restart arrived


async def test_truncate_and_replace__every_content_ever_written_is_kept_once(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    result = await truncate_and_replace(postgres, tmp_path, SCALE, seed=SEED)
    _assert_exact(result)
    assert len(result.recovery_seconds) == 1


async def test_disk_full__daemon_resumes_by_itself_once_space_is_freed(tmp_path: Path) -> None:
    result = await disk_full(tmp_path, SCALE, seed=SEED)
    _assert_exact(result)  # includes: the import did fail for lack of space first
    assert len(result.recovery_seconds) == 1


async def test_hung_loop__watchdog_exits_supervisor_restarts_nothing_lost(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    result = await hung_loop_under_supervisor(postgres, tmp_path, SCALE, seed=SEED)
    _assert_exact(result)  # includes: first exit was the watchdog's, and a new process was spawned
    assert len(result.recovery_seconds) == 1
