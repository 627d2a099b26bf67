"""The console script as a user runs it: exit codes, one-line errors, JSON summary, graceful stop."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from testkit.importing import clean_env, entry
from testkit.postgres_server import free_port
from testkit.sql import scalar

CLI = [sys.executable, "-m", "mnemo_otel"]


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = clean_env()
    full_env["OTEL_SDK_DISABLED"] = "true"  # the telemetry tests cover exporting
    full_env.update(env or {})
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=full_env, timeout=timeout, check=False
    )


class TestImportCommand:
    def test_import__prints_a_json_summary_and_exits_zero(self, database_url: str, transcripts: Path) -> None:
        (transcripts / "s.jsonl").write_bytes(entry("a") + b"{bad\n" + entry("a") + entry("b")[:-3])
        result = _cli("import", "--json", str(transcripts), env={"MNEMO_DATABASE_URL": database_url})
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["entries_stored"] == 1
        assert summary["duplicates"] == 1
        assert summary["quarantined"] == 1
        assert summary["files"] == 1
        assert summary["pending_bytes"] == len(entry("b")) - 3
        assert scalar(database_url, "SELECT count(*) FROM mnemo.entries") == 1

    def test_import__uses_the_embedded_postgres_when_no_url_is_set(
        self, tmp_path: Path, transcripts: Path
    ) -> None:
        (transcripts / "s.jsonl").write_bytes(entry("a") + entry("b"))
        env = {"MNEMO_DATA_DIR": str(tmp_path / "data")}
        first = _cli("import", "--json", str(transcripts), env=env)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["entries_stored"] == 2
        again = _cli("import", "--json", str(transcripts), env=env)
        assert json.loads(again.stdout)["entries_stored"] == 0  # same embedded database, data kept
        assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()

    def test_import__bad_database_url_is_a_one_line_error_without_the_secret(self, transcripts: Path) -> None:
        result = _cli(
            "import",
            str(transcripts),
            env={"MNEMO_DATABASE_URL": "postgresql://u:hunter2@127.0.0.1:notaport/x"},
        )
        assert result.returncode == 2
        assert result.stderr.strip().splitlines()[-1].startswith("mnemo-otel: error: invalid database URL")
        assert "hunter2" not in result.stderr + result.stdout

    def test_import__unreachable_database_exits_3(self, transcripts: Path) -> None:
        url = f"postgresql://u:hunter2@127.0.0.1:{free_port()}/x"
        result = _cli("import", str(transcripts), env={"MNEMO_DATABASE_URL": url})
        assert result.returncode == 3
        assert result.stderr.strip().splitlines()[-1].startswith("mnemo-otel: error: database unavailable")
        assert "hunter2" not in result.stderr

    def test_import__unreadable_path_exits_4(self, database_url: str, tmp_path: Path) -> None:
        result = _cli("import", str(tmp_path / "missing"), env={"MNEMO_DATABASE_URL": database_url})
        assert result.returncode == 4
        assert "no such file or directory" in result.stderr


class TestRunWatcher:
    def test_run__a_directory_moved_in_is_imported_without_waiting_for_the_rescan(
        self, database_url: str, transcripts: Path
    ) -> None:
        staging = transcripts.parent / "staging"
        (staging / "sub").mkdir(parents=True)
        (staging / "sub" / "s.jsonl").write_bytes(entry("moved-in"))
        env = clean_env()
        env.update(
            {
                "MNEMO_DATABASE_URL": database_url,
                "MNEMO_IMPORTS__RESCAN_INTERVAL_SECONDS": "600",
                "MNEMO_HEALTH__PORT": "0",
                "OTEL_SDK_DISABLED": "true",
            }
        )
        log = transcripts.parent / "daemon.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [*CLI, "run", str(transcripts)], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            _wait_for(lambda: "importer started" in log.read_text())
            _wait_until_the_watcher_answers(transcripts, database_url)
            staging.rename(transcripts / "project")
            _wait_for(
                lambda: scalar(database_url, "SELECT count(*) FROM mnemo.entries WHERE key = 'moved-in'") == 1
            )
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _wait_until_the_watcher_answers(root: Path, database_url: str, timeout: float = 30) -> None:
    """Append probe lines until one is imported: with the rescan 10 minutes away, only the file
    watcher can have woken the loop, so from then on it is armed (a condition, not a guessed delay)."""
    probe = root / "probe.jsonl"
    deadline = time.monotonic() + timeout
    for index in itertools.count():
        with probe.open("ab") as f:
            f.write(entry(f"probe-{index}"))
        until = min(deadline, time.monotonic() + 0.5)
        while time.monotonic() < until:
            if scalar(database_url, "SELECT count(*) FROM mnemo.entries WHERE key LIKE 'probe-%'"):
                return
            time.sleep(0.05)
        if time.monotonic() >= deadline:
            raise AssertionError("the file watcher never woke the loop")


class TestHealthCommand:
    def test_health__exits_1_when_no_importer_answers(self) -> None:
        result = _cli("health", env={"MNEMO_HEALTH__PORT": str(free_port())})
        assert result.returncode == 1
        assert "no answer" in result.stdout


class TestGrafanaCommand:
    def test_grafana_check__the_committed_provisioning_matches_the_spec(self) -> None:
        result = _cli("grafana", "check", "--out", str(Path(__file__).parent.parent / "grafana"))
        assert result.returncode == 0, result.stderr

    def test_grafana_render__writes_the_files_the_check_then_accepts(self, tmp_path: Path) -> None:
        rendered = _cli("grafana", "render", "--out", str(tmp_path))
        assert rendered.returncode == 0, rendered.stderr
        assert (tmp_path / "provisioning" / "alerting").is_dir()
        assert _cli("grafana", "check", "--out", str(tmp_path)).returncode == 0


class TestDbMigrateCommand:
    def test_db_migrate__is_idempotent(self, database_url: str) -> None:
        for _ in range(2):
            result = _cli("db", "migrate", env={"MNEMO_DATABASE_URL": database_url})
            assert result.returncode == 0, result.stderr
        assert scalar(database_url, "SELECT count(*) FROM mnemo.schema_migrations") >= 1


class TestRunCommand:
    @pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
    def test_run__imports_appended_lines_and_stops_cleanly_on_signal(
        self, database_url: str, transcripts: Path, stop_signal: signal.Signals
    ) -> None:
        path = transcripts / "s.jsonl"
        path.write_bytes(entry("a"))
        env = clean_env()
        env.update(
            {
                "MNEMO_DATABASE_URL": database_url,
                "MNEMO_IMPORTS__RESCAN_INTERVAL_SECONDS": "30",
                "MNEMO_HEALTH__PORT": "0",
                "OTEL_SDK_DISABLED": "true",
            }
        )
        log = transcripts.parent / "daemon.log"
        with log.open("w") as stderr:
            proc = subprocess.Popen(
                [*CLI, "run", str(transcripts)], env=env, stdout=stderr, stderr=subprocess.STDOUT
            )
        try:
            _wait_for(lambda: scalar(database_url, "SELECT count(*) FROM mnemo.entries") == 1)
            with path.open("ab") as f:
                f.write(entry("b"))
            # well before the 30 s rescan: the file watcher woke the loop
            _wait_for(lambda: scalar(database_url, "SELECT count(*) FROM mnemo.entries") == 2, timeout=15)
            proc.send_signal(stop_signal)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert "importer stopped" in log.read_text()

    def test_run__a_stop_during_start_up_is_a_clean_exit(self, transcripts: Path) -> None:
        """SIGTERM while the database does not answer yet: exit 0 (not killed by the signal)."""
        health_port = free_port()
        with socket.socket() as hole:  # accepts the connection, never answers the start-up packet
            hole.bind(("127.0.0.1", 0))
            hole.listen(8)
            env = clean_env(
                MNEMO_DATABASE_URL=f"postgresql://mnemo@127.0.0.1:{hole.getsockname()[1]}/mnemo",
                MNEMO_HEALTH__PORT=str(health_port),
                OTEL_SDK_DISABLED="true",
            )
            proc = subprocess.Popen(
                [*CLI, "run", str(transcripts)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            try:
                _wait_for(lambda: _answers(health_port))  # started, and waiting on the database
                time.sleep(0.5)
                proc.send_signal(signal.SIGTERM)
                output, _ = proc.communicate(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        assert proc.returncode == 0, output.decode(errors="replace")
        assert b"received SIGTERM" in output


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # unhealthy is an answer: the server is up
    except OSError:
        return False


def _wait_for(condition: object, timeout: float = 30) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


class TestProgressBar:
    def test_import__shows_a_progress_bar_on_a_terminal(self, database_url: str, transcripts: Path) -> None:
        import pty

        for i in range(3):
            (transcripts / f"s{i}.jsonl").write_bytes(entry(f"k{i}"))
        env = clean_env()
        env.update({"MNEMO_DATABASE_URL": database_url, "OTEL_SDK_DISABLED": "true", "COLUMNS": "100"})
        output = bytearray()

        def read(fd: int) -> bytes:
            data = os.read(fd, 4096)
            output.extend(data)
            return data

        pid, fd = pty.fork()
        if pid == 0:  # the child: the CLI with a terminal on stdin/stdout/stderr
            os.execve(sys.executable, [sys.executable, "-m", "mnemo_otel", "import", str(transcripts)], env)
        try:
            while True:
                try:
                    if not read(fd):
                        break
                except OSError:
                    break
        finally:
            _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert b"importing" in output
        assert scalar(database_url, "SELECT count(*) FROM mnemo.entries") == 3


class TestRunStartupErrors:
    def test_run__health_port_in_use_is_a_config_error(self, database_url: str, transcripts: Path) -> None:
        import socket

        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = _cli(
                "run",
                str(transcripts),
                env={"MNEMO_DATABASE_URL": database_url, "MNEMO_HEALTH__PORT": str(port)},
            )
        assert result.returncode == 2
        assert "cannot serve health" in result.stderr.strip().splitlines()[-1]

    def test_run__unreachable_database_at_startup_exits_3(self, transcripts: Path) -> None:
        url = f"postgresql://u:hunter2@127.0.0.1:{free_port()}/x"
        result = _cli("run", str(transcripts), env={"MNEMO_DATABASE_URL": url, "MNEMO_HEALTH__PORT": "0"})
        assert result.returncode == 3
        assert "hunter2" not in result.stderr + result.stdout
