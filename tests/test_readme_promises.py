"""What the README promises a user of the console script, each checked the way a user would see it.

`mnemo-otel health [--ready]` (exit 0 healthy/degraded, 1 otherwise), exit code 1 for an unexpected
error, `run` with no path (``MNEMO_ROOTS``, else ``$CLAUDE_CONFIG_DIR/projects``),
``MNEMO_IMPORTS__BATCH_MAX_BYTES``, and the trace id of the import on every row it wrote.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import asyncpg

from mnemo_otel.health import HealthServer
from mnemo_otel.settings import HealthSettings
from mnemo_otel.state import LoopState
from mnemo_otel.telemetry import names
from testkit import free_port, wait_for
from testkit.importing import clean_env, entry
from testkit.otlp_sink import running_sink

CLI = [sys.executable, "-m", "mnemo_otel"]


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = clean_env(**{"OTEL_SDK_DISABLED": "true", **env})
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=full_env, timeout=120, check=False
    )


def _fetch(database_url: str, sql: str) -> list[asyncpg.Record]:
    async def query() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return anyio.run(query)


@contextmanager
def _daemon(log: Path, *args: str, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    full_env = clean_env(**{"OTEL_SDK_DISABLED": "true", "MNEMO_HEALTH__PORT": "0", **env})
    with log.open("wb") as out:
        proc = subprocess.Popen([*CLI, "run", *args], env=full_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _keys(database_url: str) -> set[str]:
    return {r["key"] for r in _fetch(database_url, "SELECT key FROM mnemo.entries")}


class TestHealth:
    def test_health__ready_and_live_exit_0_against_a_running_daemon(
        self, database_url: str, transcripts: Path, tmp_path: Path
    ) -> None:
        (transcripts / "s.jsonl").write_bytes(entry("a"))
        port = str(free_port())
        with _daemon(
            tmp_path / "daemon.log",
            str(transcripts),
            MNEMO_DATABASE_URL=database_url,
            MNEMO_HEALTH__PORT=port,
        ):
            wait_for(lambda: _keys(database_url) == {"a"}, timeout=60, what="the import")

            def ready_answer() -> subprocess.CompletedProcess[str] | None:
                answer = _cli("health", "--ready", MNEMO_HEALTH__PORT=port)
                return answer if answer.returncode == 0 else None

            ready = wait_for(ready_answer, timeout=30, what="the daemon to report ready")
            assert json.loads(ready.stdout)["status"] == "healthy"
            assert json.loads(ready.stdout)["db_up"] is True
            assert _cli("health", MNEMO_HEALTH__PORT=port).returncode == 0

    def test_health__degraded_exits_0_and_a_database_down_fails_only_readiness(self) -> None:
        old_backlog = LoopState(db_up=True, backlog_bytes=10, backlog_since=time.time() - 3600)
        down = LoopState(db_up=False, last_error="db_unavailable")
        for state, ready_code, live_code, status in (
            (old_backlog, 0, 0, "degraded"),
            (down, 1, 0, "unhealthy"),
        ):
            server = HealthServer(state, HealthSettings(port=0))
            server.start()
            try:
                port = str(server.port)
                ready = _cli("health", "--ready", MNEMO_HEALTH__PORT=port)
                assert (ready.returncode, json.loads(ready.stdout)["status"]) == (ready_code, status)
                assert _cli("health", MNEMO_HEALTH__PORT=port).returncode == live_code
            finally:
                server.stop()


class TestExitCodes:
    def test_exit_1__a_database_newer_than_this_version_is_an_error_not_a_retry(
        self, database_url: str, transcripts: Path
    ) -> None:
        (transcripts / "s.jsonl").write_bytes(entry("a"))
        _fetch(
            database_url,
            "INSERT INTO mnemo.schema_migrations (version, name, checksum) VALUES (9999, 'future', 'x')",
        )
        for args in (("import", str(transcripts)), ("db", "migrate")):
            result = _cli(*args, MNEMO_DATABASE_URL=database_url)
            assert result.returncode == 1, (args, result.stderr)
            last = result.stderr.strip().splitlines()[-1]
            assert last.startswith("mnemo-otel: error: database schema version 9999 is newer"), last
        assert _keys(database_url) == set()


class TestRootsFromSettings:
    def test_run__without_a_path_watches_every_root_in_mnemo_roots(
        self, database_url: str, tmp_path: Path
    ) -> None:
        roots = [tmp_path / "one", tmp_path / "two"]
        for index, root in enumerate(roots):
            (root / "project").mkdir(parents=True)
            (root / "project" / "s.jsonl").write_bytes(entry(f"from-root-{index}"))
        (tmp_path / "claude" / "projects").mkdir(parents=True)
        (tmp_path / "claude" / "projects" / "s.jsonl").write_bytes(entry("not-a-root"))
        env = {
            "MNEMO_DATABASE_URL": database_url,
            "MNEMO_ROOTS": json.dumps([str(r) for r in roots]),
            "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"),
        }
        with _daemon(tmp_path / "daemon.log", **env):
            wait_for(
                lambda: _keys(database_url) == {"from-root-0", "from-root-1"}, timeout=60, what="both roots"
            )
            with (roots[1] / "project" / "s.jsonl").open("ab") as f:
                f.write(entry("appended"))
            wait_for(lambda: "appended" in _keys(database_url), timeout=60, what="the watched root's append")
        assert "not-a-root" not in _keys(database_url)

    def test_run__without_a_path_or_roots_uses_the_claude_config_dir(
        self, database_url: str, tmp_path: Path
    ) -> None:
        projects = tmp_path / "claude" / "projects" / "-home-user-x"
        projects.mkdir(parents=True)
        (projects / "s.jsonl").write_bytes(entry("claude-config-dir"))
        env = {"MNEMO_DATABASE_URL": database_url, "CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
        with _daemon(tmp_path / "daemon.log", **env):
            wait_for(
                lambda: _keys(database_url) == {"claude-config-dir"}, timeout=60, what="the default root"
            )


class TestBatchSize:
    def test_import__batch_max_bytes_cuts_one_transaction_per_that_many_bytes(
        self, database_url: str, transcripts: Path
    ) -> None:
        lines = [entry(f"k{i:03d}") for i in range(20)]
        assert len(set(map(len, lines))) == 1
        (transcripts / "s.jsonl").write_bytes(b"".join(lines))
        limit = 3 * len(lines[0]) - 10  # the line that reaches the limit closes the batch: 3 lines each
        result = _cli(
            "import",
            "--json",
            str(transcripts),
            MNEMO_DATABASE_URL=database_url,
            MNEMO_IMPORTS__BATCH_MAX_BYTES=str(limit),
        )
        assert result.returncode == 0, result.stderr
        # imported_at is the transaction's start time: one value per transaction.
        rows = _fetch(
            database_url, "SELECT imported_at, count(*) AS n FROM mnemo.entries GROUP BY 1 ORDER BY 1"
        )
        assert [r["n"] for r in rows] == [3, 3, 3, 3, 3, 3, 2]


class TestProvenance:
    def test_import__entries_and_quarantine_rows_carry_the_trace_id_of_their_import(
        self, database_url: str, transcripts: Path
    ) -> None:
        (transcripts / "one.jsonl").write_bytes(entry("a", session="s1") + b"{not json\n")
        (transcripts / "two.jsonl").write_bytes(b"[1,2]\n" + entry("b", session="s2"))
        with running_sink() as sink:
            env = {
                "MNEMO_DATABASE_URL": database_url,
                "OTEL_SDK_DISABLED": "false",
                "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
                "OTEL_METRICS_EXPORTER": "none",
            }
            result = _cli("import", str(transcripts), **env)
            assert result.returncode == 0, result.stderr
            spans = [s for s in sink.spans() if s.name == names.SPAN_IMPORT]  # flushed before the exit
        by_file = {s.attributes[names.ATTR_TRANSCRIPT_PATH]: s.trace_id for s in spans}
        assert len(set(by_file.values())) == 2
        entries = _fetch(database_url, "SELECT source_path, import_trace_id FROM mnemo.entries")
        bad = _fetch(database_url, "SELECT source_path, import_trace_id FROM mnemo.quarantine")
        assert len(entries) == 2 and len(bad) == 2
        for row in [*entries, *bad]:
            assert row["import_trace_id"] == by_file[Path(row["source_path"]).name], dict(row)
