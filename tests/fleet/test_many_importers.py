"""Many importers, one database: four hosts' daemons at once, SIGKILLed at random moments (the seed is
printed; ``MNEMO_CHAOS_SEED`` replays it). 0 lost, 0 duplicated, no deadlock."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.chaos.fleet import many_importers
from testkit.chaos.harness import Scale
from testkit.chaos.scenarios import seed_from_env
from testkit.postgres_server import PostgresServer

SCALE = Scale.from_env()
SEED = seed_from_env()

pytestmark = [pytest.mark.chaos, pytest.mark.anyio, pytest.mark.timeout(1800)]


async def test_four_importers__sigkills_at_random_lose_and_duplicate_nothing_and_never_deadlock(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    print(f"fleet chaos seed {SEED}")
    result = await many_importers(postgres, tmp_path, SCALE, seed=SEED, importers=4)
    print("; ".join(result.notes))
    assert (result.lost, result.duplicated, result.differences) == (0, 0, []), "; ".join(
        result.differences + result.notes
    )
