"""``mnemo-otel hook`` never harms Claude Code: nothing on stdout, exit 0, one line on stderr at most,
and it records only ids, the path, the event and the time."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest

from mnemo_otel.announce.hook import STDIN_MAX_BYTES, default_data_dir, hook_main
from mnemo_otel.announce.spool import Announcement, Spool, SpoolFull, spool_directory

CANARY = "conversation-canary-7f3a"


def hook_input(**fields: object) -> bytes:
    base: dict[str, object] = {
        "session_id": "0b9e5c8e-1111-4c4c-9d9d-000000000001",
        "transcript_path": "/somewhere/projects/-w/0b9e5c8e-1111-4c4c-9d9d-000000000001.jsonl",
        "cwd": "/w",
        "hook_event_name": "Stop",
        "last_assistant_message": CANARY,
        "prompt_id": "p-1",
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


def run_hook(
    data: bytes, data_dir: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    code = hook_main(["--data-dir", str(data_dir), *args], stdin=io.BytesIO(data), environ={})
    out, err = capsys.readouterr()
    return code, out, err


def records(data_dir: Path) -> list[Announcement]:
    read = Spool(spool_directory(data_dir)).read(None)
    return [] if read is None else read.records


def test_hook__records_the_announcement_and_nothing_of_the_conversation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_hook(hook_input(), tmp_path, capsys)
    assert (code, out, err) == (0, "", "")
    [record] = records(tmp_path)
    assert record.session_id == "0b9e5c8e-1111-4c4c-9d9d-000000000001"
    assert record.path.endswith("0b9e5c8e-1111-4c4c-9d9d-000000000001.jsonl")
    assert record.event == "Stop"
    assert record.host
    spool_bytes = Spool(spool_directory(tmp_path)).path.read_bytes()
    assert CANARY.encode() not in spool_bytes and b"p-1" not in spool_bytes
    assert os.stat(spool_directory(tmp_path) / "spool.jsonl").st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"{not json", "not JSON"),
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"[1, 2]", "not a JSON object"),
        (hook_input(session_id=None), "no session_id"),
        (hook_input(transcript_path=None), "no transcript_path"),
        (hook_input(hook_event_name=None), "no hook_event_name"),
        (hook_input(session_id=42), "no session_id"),
        (hook_input(transcript_path="relative/s.jsonl"), "not absolute"),
        (hook_input(transcript_path="/a\x00b.jsonl"), "unusable"),
    ],
)
def test_hook__unusable_input_is_one_line_on_stderr_and_exit_0(
    data: bytes, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_hook(data, tmp_path, capsys)
    assert (code, out) == (0, "")
    assert why in err and err.count("\n") == 1 and CANARY not in err
    assert records(tmp_path) == []


def test_hook__huge_input_is_drained_and_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.BytesIO(hook_input(last_assistant_message="x" * (STDIN_MAX_BYTES + 10)))
    code = hook_main(["--data-dir", str(tmp_path)], stdin=stream, environ={})
    out, err = capsys.readouterr()
    assert (code, out) == (0, "")
    assert "over" in err and stream.read() == b""  # read to the end: Claude Code never meets a closed pipe
    assert records(tmp_path) == []


def test_hook__a_large_answer_under_the_bound_is_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_hook(hook_input(last_assistant_message="y" * 2_000_000), tmp_path, capsys)
    assert (code, out, err) == (0, "", "")
    assert len(records(tmp_path)) == 1


def test_hook__an_unwritable_spool_is_one_line_and_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "a-file"
    data_dir.write_text("not a directory")
    code, out, err = run_hook(hook_input(), data_dir, capsys)
    assert (code, out) == (0, "")
    assert "cannot write the spool" in err and err.count("\n") == 1


def test_spool__full_refuses_new_records_and_keeps_the_old(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = Spool(spool_directory(tmp_path))
    for n in range(3):
        assert run_hook(hook_input(hook_event_name=f"E{n}"), tmp_path, capsys)[0] == 0
    before = spool.path.read_bytes()
    full = Spool(spool_directory(tmp_path), max_bytes=len(before) + 10)
    with pytest.raises(SpoolFull):
        full.append(Announcement("h", "s", "/p.jsonl", "Stop", 1.0))
    assert spool.path.read_bytes() == before
    assert [e.event for e in records(tmp_path)] == ["E0", "E1", "E2"]


def test_hook__a_full_spool_through_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spool = Spool(spool_directory(tmp_path))
    run_hook(hook_input(), tmp_path, capsys)
    with spool.path.open("ab") as f:  # fill it to its bound with records nobody consumed
        f.truncate(spool.max_bytes)
    code, out, err = run_hook(hook_input(), tmp_path, capsys)
    assert (code, out) == (0, "") and "spool full" in err
    assert spool.path.stat().st_size == spool.max_bytes


def test_hook__bad_arguments_still_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_hook(hook_input(), tmp_path, capsys, "--no-such-option")
    assert (code, out) == (0, "") and "bad arguments" in err


def test_hook__data_dir_default_matches_the_settings(tmp_path: Path) -> None:
    assert default_data_dir({}) == platformdirs.user_data_path("mnemo-otel")
    env = {"XDG_DATA_HOME": str(tmp_path)}
    assert default_data_dir(env) == tmp_path / "mnemo-otel"


def test_hook__the_real_process_loads_nothing_heavy_and_prints_nothing(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from mnemo_otel.cli import main\n"
        "code = main(['hook'])\n"
        "heavy = ('asyncpg', 'opentelemetry', 'pydantic', 'pydantic_settings', 'anyio', 'watchfiles',"
        " 'platformdirs', 'mnemo_otel.importer', 'mnemo_otel.settings', 'mnemo_otel.store')\n"
        "sys.stderr.write(repr((code, sorted(m for m in sys.modules if m.startswith(heavy)))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        input=hook_input(),
        capture_output=True,
        env={**os.environ, "MNEMO_DATA_DIR": str(tmp_path)},
        check=True,
    )
    assert done.stdout == b""
    assert done.stderr.decode() == "(0, [])"
    assert len(records(tmp_path)) == 1
