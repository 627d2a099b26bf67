"""Two machines, one archive: transcripts at the SAME absolute path with different content, each
importer in its own mount namespace, run alternately. Every line of both is stored once, each under
its own host, and the second pass of each reads nothing again."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from testkit.chaos.harness import fresh_database, importer_process
from testkit.fleet import SAME_NAME_FILE, SHARED_SESSION, Host, complete_offsets_on, host_importer, make_hosts
from testkit.postgres_server import PostgresServer

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(900)]


async def _import(host: Host, dsn: str, same_root: Path, log_path: Path) -> dict[str, object]:
    with log_path.open("ab") as log:
        async with host_importer(host, ["import", "--json", str(same_root)], dsn, same_root, log) as proc:
            assert proc.stdout is None
            code = await proc.wait()
    assert code == 0, log_path.read_text(errors="replace")[-3000:]
    summary: dict[str, object] = json.loads(log_path.read_text().strip().splitlines()[-1])
    return summary


async def _rows(dsn: str, sql: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        return sorted((tuple(r) for r in await conn.fetch(sql)), key=repr)
    finally:
        await conn.close()


async def _reference_keys(server: PostgresServer, host: Host, log_path: Path) -> set[str]:
    """The keys one plain import of this host's files (at their real path) stores."""
    dsn = await fresh_database(server, "fleet_reference")
    with log_path.open("ab") as log:
        async with importer_process(["import", str(host.directory)], dsn, log) as proc:
            assert await proc.wait() == 0
    return {str(key) for (key,) in await _rows(dsn, "SELECT key FROM mnemo.entries")}


async def test_two_hosts_at_the_same_path__every_line_once_and_a_second_pass_reads_nothing(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    alpha, beta = make_hosts(tmp_path, 2, mb=0.5, seed=11)
    same_root = tmp_path / "home" / "user" / ".claude" / "projects"
    same_root.mkdir(parents=True)  # empty here: each importer sees its own machine's files there
    dsn = await fresh_database(postgres, "fleet_two")
    logs = {h.host_id: tmp_path / f"{h.host_id}.log" for h in (alpha, beta)}

    first = {h.host_id: await _import(h, dsn, same_root, logs[h.host_id]) for h in (alpha, beta)}
    files_after_first = await _rows(dsn, "SELECT host, path, committed_offset, updated_at FROM mnemo.files")
    entries_after_first = await _rows(dsn, "SELECT key, source_host, import_trace_id FROM mnemo.entries")
    second = {h.host_id: await _import(h, dsn, same_root, logs[h.host_id]) for h in (alpha, beta)}

    for host_id, summary in second.items():  # nothing read again: no line went to the database
        assert (summary["entries_stored"], summary["duplicates"], summary["quarantined"]) == (0, 0, 0), (
            host_id
        )
    assert sorted(
        await _rows(dsn, "SELECT host, path, committed_offset, updated_at FROM mnemo.files")
    ) == sorted(files_after_first)
    assert sorted(await _rows(dsn, "SELECT key, source_host, import_trace_id FROM mnemo.entries")) == sorted(
        entries_after_first
    )

    # Each host's checkpoints, at the same paths, end where that host's complete lines end.
    expected_offsets = complete_offsets_on(alpha, same_root) | complete_offsets_on(beta, same_root)
    files = {(host, path): offset for host, path, offset, _ in files_after_first}
    assert files == {key: offset for key, offset in expected_offsets.items() if offset}  # empty: no row
    same_name = str(same_root / SAME_NAME_FILE)
    assert {h for h, p in files if p == same_name} == {"host-1", "host-2"}

    # Every line of both machines stored exactly once (keys are unique; none missing, none extra).
    keys_alpha = await _reference_keys(postgres, alpha, tmp_path / "reference.log")
    keys_beta = await _reference_keys(postgres, beta, tmp_path / "reference.log")
    stored = {key: host for key, host, _ in entries_after_first}
    assert set(stored) == keys_alpha | keys_beta
    assert first["host-1"]["entries_stored"] == len(keys_alpha)
    assert first["host-2"]["entries_stored"] == len(keys_beta - keys_alpha)
    assert {stored[f"host-1-{i}"] for i in range(50)} == {"host-1"}  # same path, its own host
    assert {stored[f"host-2-{i}"] for i in range(50)} == {"host-2"}

    # The session resumed on both machines is stored once: counted once, not twice.
    ((count,),) = await _rows(
        dsn, f"SELECT entry_count FROM mnemo.sessions WHERE session_id = '{SHARED_SESSION}'"
    )
    shared_lines = (
        (alpha.directory / "-home-user-shared" / f"{SHARED_SESSION}.jsonl").read_bytes().count(b"\n")
    )
    assert count == shared_lines - 1  # its summary line carries no session id
