"""``mnemo-otel verify`` as a user runs it, on a real PostgreSQL: exit codes, exact counts, repair."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testkit.importing import clean_env, entry
from testkit.otlp_sink import OtlpSink, running_sink
from testkit.postgres_server import free_port
from testkit.sql import fetch
from testkit.synthetic import session_lines

CLI = [sys.executable, "-m", "mnemo_otel"]
BAD = b'{"type":"user","uuid":"broken"\n'


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=clean_env(**env), timeout=180, check=False
    )


def _verify(transcripts: Path, env: dict[str, str], *extra: str) -> tuple[int, dict[str, Any]]:
    result = _cli("verify", "--json", *extra, str(transcripts), env=env)
    assert result.returncode in (0, 5), result.stderr
    return result.returncode, json.loads(result.stdout)


def _corpus(root: Path) -> int:
    """Two sessions (the second resumes the first: repeated uuids), a bad line, a pending tail."""
    rng = random.Random(3)
    first = list(session_lines("sess-1", turns=4, rng=rng))
    project = root / "-home-user-p"
    project.mkdir()
    (project / "sess-1.jsonl").write_bytes(b"".join(first[:10]) + BAD + b"\n" + b"".join(first[10:]))
    resumed = first[:5] + list(session_lines("sess-2", turns=2, rng=rng))
    (project / "sess-2.jsonl").write_bytes(b"".join(resumed) + entry("tail")[:-5])
    return len(first) + 1 + len(resumed)


@pytest.fixture
def otlp() -> Any:
    with running_sink() as sink:
        yield sink


def test_verify__counts_exactly_what_was_removed_and_repair_restores_it_once(
    database_url: str, transcripts: Path, otlp: OtlpSink
) -> None:
    lines = _corpus(transcripts)
    env = {"MNEMO_DATABASE_URL": database_url, "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url}
    assert _cli("import", str(transcripts), env=env).returncode == 0
    entries_before = fetch(database_url, "SELECT count(*) FROM mnemo.entries")[0][0]

    code, intact = _verify(transcripts, env)
    assert code == 0
    assert (intact["files"], intact["lines"], intact["missing"], intact["missing_lines"]) == (2, lines, 0, [])
    assert (intact["stored"], intact["quarantined"]) == (lines - 1, 1)
    assert intact["pending_bytes"] == len(entry("tail")) - 5

    # Three entry rows deleted behind the importer's back, one of them a resumed (repeated) line.
    deleted = fetch(
        database_url,
        "DELETE FROM mnemo.entries WHERE key IN (SELECT key FROM mnemo.entries WHERE session_id = 'sess-1'"
        " ORDER BY source_offset LIMIT 3) RETURNING key, source_offset",
    )
    code, report = _verify(transcripts, env)
    assert code == 5
    assert report["missing"] == 3
    assert {m["key"] for m in report["missing_lines"]} == {row["key"] for row in deleted}
    first_file = str(transcripts / "-home-user-p" / "sess-1.jsonl")
    assert {(m["path"], m["offset"]) for m in report["missing_lines"] if m["path"] == first_file} == {
        (first_file, row["source_offset"]) for row in deleted
    }

    code, repaired = _verify(transcripts, env, "--repair")
    assert code == 5 and repaired["repaired"] == 3  # the report is of the state it found
    assert repaired["trace_id"]
    rows = fetch(
        database_url,
        "SELECT key, import_trace_id FROM mnemo.entries WHERE key = ANY($1::text[])",
        [row["key"] for row in deleted],
    )
    assert {(r["key"], r["import_trace_id"]) for r in rows} == {
        (row["key"], repaired["trace_id"]) for row in deleted
    }
    code, again = _verify(transcripts, env)
    assert (code, again["missing"]) == (0, 0)
    assert fetch(database_url, "SELECT count(*) FROM mnemo.entries")[0][0] == entries_before

    # The same for the quarantined line.
    gone = fetch(database_url, "DELETE FROM mnemo.quarantine RETURNING source_offset, line_sha256")
    code, report = _verify(transcripts, env)
    assert (code, report["missing"]) == (5, 1)
    assert report["missing_lines"] == [
        {"path": first_file, "offset": gone[0]["source_offset"], "key": f"sha256:{gone[0]['line_sha256']}"}
    ]
    code, repaired = _verify(transcripts, env, "--repair")
    assert repaired["repaired"] == 1
    assert fetch(database_url, "SELECT raw, error_kind FROM mnemo.quarantine")[0][0] == BAD[:-1]
    code, again = _verify(transcripts, env)
    assert (code, again["missing"], again["quarantined"]) == (0, 0, 1)


def test_verify__a_file_never_imported_is_missing_and_repair_imports_it(
    database_url: str, transcripts: Path
) -> None:
    (transcripts / "s.jsonl").write_bytes(entry("a") + entry("b") + BAD)
    env = {"MNEMO_DATABASE_URL": database_url, "OTEL_SDK_DISABLED": "true"}
    code, report = _verify(transcripts, env)
    assert (code, report["missing"], report["stored"]) == (5, 3, 0)
    code, report = _verify(transcripts, env, "--repair")
    assert report["repaired"] == 3
    # imported the normal way: the checkpoint moved to the end, so the daemon will not read it again
    assert (
        fetch(database_url, "SELECT committed_offset FROM mnemo.files")[0][0]
        == (transcripts / "s.jsonl").stat().st_size
    )
    assert _verify(transcripts, env)[0] == 0


def test_verify__human_report_without_json(database_url: str, transcripts: Path) -> None:
    (transcripts / "s.jsonl").write_bytes(entry("a"))
    result = _cli(
        "verify", str(transcripts), env={"MNEMO_DATABASE_URL": database_url, "OTEL_SDK_DISABLED": "true"}
    )
    assert result.returncode == 5
    assert "missing 1" in result.stdout and "s.jsonl @ 0  a" in result.stdout


def test_verify__unreachable_database_exits_3(transcripts: Path) -> None:
    (transcripts / "s.jsonl").write_bytes(entry("a"))
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    result = _cli("verify", str(transcripts), env={"MNEMO_DATABASE_URL": url, "OTEL_SDK_DISABLED": "true"})
    assert result.returncode == 3, result.stderr


def test_verify__unreadable_path_exits_4(database_url: str, tmp_path: Path) -> None:
    env = {"MNEMO_DATABASE_URL": database_url, "OTEL_SDK_DISABLED": "true"}
    result = _cli("verify", str(tmp_path / "nowhere"), env=env)
    assert result.returncode == 4
    assert "no such file or directory" in result.stderr


def test_verify__a_line_edited_on_disk_after_its_import_has_diverged(
    database_url: str, transcripts: Path
) -> None:
    """Same key, other bytes: the keys all check out, yet the archive could no longer give the file back
    as it now is; verify reports the line as diverged and exits 5."""
    _corpus(transcripts)
    env = {"MNEMO_DATABASE_URL": database_url, "OTEL_SDK_DISABLED": "true"}
    assert _cli("import", str(transcripts), env=env).returncode == 0
    assert _verify(transcripts, env)[0] == 0
    path = transcripts / "-home-user-p" / "sess-1.jsonl"
    data = path.read_bytes()
    second = data.index(b"\n") + 1
    edited = data[second : data.index(b"\n", second)].replace(b'"timestamp":"2', b'"timestamp":"3', 1)
    assert len(edited) == data.index(b"\n", second) - second and edited not in data
    path.write_bytes(data[:second] + edited + data[data.index(b"\n", second) :])  # same inode, same key
    code, report = _verify(transcripts, env)
    assert (code, report["missing"], report["diverged"]) == (5, 0, 1)
    assert report["diverged_lines"] == [{"path": str(path), "offset": second}]


def test_verify__checks_the_transcripts_the_hooks_announced_outside_the_roots(
    database_url: str, tmp_path: Path, otlp: OtlpSink
) -> None:
    watched = tmp_path / "projects"
    (watched / "-home-user-p").mkdir(parents=True)
    (watched / "-home-user-p" / "here.jsonl").write_bytes(entry("w1", session="here"))
    # A session Claude Code wrote under another CLAUDE_CONFIG_DIR, with its subagent beside it.
    outside = tmp_path / "elsewhere" / "projects" / "-home-user-q"
    session = outside / "sess-out.jsonl"
    subagent = outside / "sess-out" / "subagents" / "agent-a1.jsonl"
    subagent.parent.mkdir(parents=True)
    session.write_bytes(entry("o1", session="sess-out") + entry("o2", session="sess-out"))
    subagent.write_bytes(entry("s1", session="sess-out", isSidechain=True))
    env = {
        "MNEMO_DATABASE_URL": database_url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
        "MNEMO_HOST_ID": "laptop",
        "MNEMO_ROOTS": json.dumps([str(watched)]),
    }
    assert _cli("import", str(watched), env=env).returncode == 0
    assert _cli("import", str(outside), env=env).returncode == 0  # as the daemon imports announced files
    fetch(
        database_url,
        """INSERT INTO mnemo.announcements (host, path, session_id, first_event, last_event,
                                           first_announced_at, last_announced_at)
           VALUES ('laptop', $1, 'sess-out', 'SessionStart', 'SessionEnd', now(), now()) RETURNING path""",
        str(session),
    )
    assert fetch(database_url, "DELETE FROM mnemo.entries WHERE key IN ('o2', 's1') RETURNING key")

    whole = _cli("verify", "--json", env=env)
    report = json.loads(whole.stdout)
    assert whole.returncode == 5, whole.stderr
    assert (report["files"], report["missing"]) == (3, 2)
    assert {m["path"] for m in report["missing_lines"]} == {str(session), str(subagent)}
    code, named = _verify(watched, env)  # a path named: that path only
    assert (code, named["files"], named["missing"]) == (0, 1, 0)
