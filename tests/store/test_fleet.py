"""Fleet membership: hosts enrol on start, live importers see the members, retirement is deliberate."""

from __future__ import annotations

import json
import subprocess
import sys

import asyncpg
import pytest

from mnemo_otel.store.fleet import RetireRefused, retire
from mnemo_otel.store.postgres import PostgresSink
from testkit.importing import clean_env

pytestmark = pytest.mark.anyio


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(MNEMO_DATABASE_URL=database_url, OTEL_SDK_DISABLED="true")
    return subprocess.run(
        [sys.executable, "-m", "mnemo_otel", "hosts", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_members__every_live_host_sees_every_daemon_host_and_no_retired_or_one_shot_one(
    database_url: str, db: asyncpg.Connection
) -> None:
    a = await PostgresSink.open(database_url, host_id="a")
    b = await PostgresSink.open(database_url, host_id="b")
    one_shot = await PostgresSink.open(database_url, host_id="c")  # imports, runs no daemon
    await one_shot.aclose()
    try:
        assert await a.touch_host() == ["a"]  # b has not run its daemon loop yet
        assert await b.touch_host() == ["a", "b"]
        await db.execute(
            "UPDATE mnemo.hosts SET last_seen_at = now() - interval '1 hour' WHERE host_id = 'b'"
        )
        await retire(db, "b")
        assert await a.touch_host() == ["a"]
        assert await b.touch_host() == ["a", "b"]  # a retired host that runs again is a member again
    finally:
        await a.aclose()
        await b.aclose()


async def test_retire__refuses_a_host_seen_recently_unless_forced_and_an_unknown_one(
    database_url: str, db: asyncpg.Connection
) -> None:
    sink = await PostgresSink.open(database_url, host_id="alive")
    await sink.aclose()
    with pytest.raises(RetireRefused, match="seen 0 s ago"):
        await retire(db, "alive")
    with pytest.raises(RetireRefused, match="no host"):
        await retire(db, "nobody")
    await retire(db, "alive", force=True)
    assert await db.fetchval("SELECT retired_at IS NOT NULL FROM mnemo.hosts WHERE host_id = 'alive'")


async def test_cli__hosts_list_and_retire(database_url: str, db: asyncpg.Connection) -> None:
    for host in ("desk", "laptop"):
        sink = await PostgresSink.open(database_url, host_id=host)
        await sink.aclose()
    await db.execute(
        "UPDATE mnemo.hosts SET last_seen_at = now() - interval '2 days' WHERE host_id = 'laptop'"
    )

    retired = _cli(database_url, "retire", "laptop")
    assert retired.returncode == 0, retired.stderr
    refused = _cli(database_url, "retire", "desk")
    assert refused.returncode == 2 and "stop its importer first" in refused.stderr

    listed = _cli(database_url, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["host_id"]: row for row in json.loads(listed.stdout)}
    assert set(rows) == {"desk", "laptop"}
    assert rows["laptop"]["retired_at"] is not None and rows["desk"]["retired_at"] is None
    table = _cli(database_url, "list")
    assert "laptop" in table.stdout and "retired" in table.stdout and "one-shot" in table.stdout
