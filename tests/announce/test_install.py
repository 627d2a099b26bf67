"""``mnemo-otel hook --install/--uninstall``: our entry in settings.json, only ours, written atomically."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mnemo_otel.announce.install import HOOK_EVENTS, hook_command, is_ours
from mnemo_otel.cli import main

OTHER = {"type": "command", "command": "notify-send done"}
EXISTING: dict[str, Any] = {
    "model": "opus",
    "env": {"FOO": "1"},
    "hooks": {
        "Stop": [{"matcher": "", "hooks": [OTHER]}],
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "audit.sh"}]}],
    },
}


def install(settings: Path, data_dir: Path, *extra: str) -> int:
    return main(["hook", "--install", "--settings", str(settings), "--data-dir", str(data_dir), *extra])


def uninstall(settings: Path, *extra: str) -> int:
    return main(["hook", "--uninstall", "--settings", str(settings), *extra])


def ours(settings: dict[str, Any], event: str) -> list[str]:
    return [
        entry["command"]
        for group in settings.get("hooks", {}).get(event, [])
        for entry in group["hooks"]
        if is_ours(entry.get("command"))
    ]


def test_install__adds_our_hook_for_each_event_and_keeps_everything_else(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(EXISTING))
    os.chmod(settings, 0o640)
    assert install(settings, tmp_path / "data") == 0
    after = json.loads(settings.read_text())
    for event in HOOK_EVENTS:
        assert ours(after, event) == [hook_command(tmp_path / "data")]
    assert after["model"] == "opus" and after["env"] == {"FOO": "1"}
    assert after["hooks"]["PreToolUse"] == EXISTING["hooks"]["PreToolUse"]
    assert after["hooks"]["Stop"][0] == {"matcher": "", "hooks": [OTHER]}
    assert settings.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_install__twice_changes_nothing_and_a_new_data_dir_updates_in_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(EXISTING))
    assert install(settings, tmp_path / "data") == 0
    first = settings.read_bytes()
    assert install(settings, tmp_path / "data") == 0
    assert settings.read_bytes() == first
    assert "no change" in capsys.readouterr().out
    assert install(settings, tmp_path / "elsewhere") == 0
    after = json.loads(settings.read_text())
    for event in HOOK_EVENTS:
        assert ours(after, event) == [hook_command(tmp_path / "elsewhere")]


def test_install__the_command_is_absolute_and_runs_from_anywhere(tmp_path: Path) -> None:
    command = hook_command(tmp_path / "data dir with spaces")
    assert Path(shlex.split(command)[0]).is_absolute()
    payload = {"session_id": "s", "transcript_path": "/x/s.jsonl", "hook_event_name": "Stop"}
    done = subprocess.run(
        ["/bin/sh", "-c", command],
        input=json.dumps(payload).encode(),
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    assert (tmp_path / "data dir with spaces" / "announcements" / "spool.jsonl").is_file()


def test_install__dry_run_shows_a_diff_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(EXISTING))
    before = settings.read_bytes()
    assert install(settings, tmp_path / "data", "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.startswith("---") and "+" in out and "SessionEnd" in out
    assert settings.read_bytes() == before
    missing = tmp_path / "new" / "settings.json"
    assert install(missing, tmp_path / "data", "--dry-run") == 0
    assert not missing.exists()


def test_install__creates_a_missing_settings_file(tmp_path: Path) -> None:
    settings = tmp_path / "config" / "settings.json"
    assert install(settings, tmp_path / "data") == 0
    after = json.loads(settings.read_text())
    assert set(after["hooks"]) == set(HOOK_EVENTS)
    group = after["hooks"]["Stop"][0]
    assert group["matcher"] == "" and group["hooks"][0]["type"] == "command"


def test_install__follows_a_symlinked_settings_file(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "claude-settings.json"
    real.parent.mkdir()
    real.write_text("{}")
    link = tmp_path / "settings.json"
    link.symlink_to(real)
    assert install(link, tmp_path / "data") == 0
    assert link.is_symlink() and ours(json.loads(real.read_text()), "Stop")


@pytest.mark.parametrize("body", ['{"hooks": ', "[1, 2]", '{"hooks": []}', '{"hooks": {"Stop": {}}}'])
def test_install__bad_settings_json_is_refused_untouched(
    body: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(body)
    assert install(settings, tmp_path / "data") == 2
    assert "left untouched" in capsys.readouterr().err
    assert settings.read_text() == body
    assert uninstall(settings) == 2
    assert settings.read_text() == body


def test_uninstall__removes_only_ours(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(EXISTING))
    assert install(settings, tmp_path / "data") == 0
    assert uninstall(settings) == 0
    assert json.loads(settings.read_text()) == EXISTING
    assert uninstall(settings) == 0
    assert json.loads(settings.read_text()) == EXISTING
    empty = tmp_path / "empty.json"
    empty.write_text('{"theme": "dark"}')
    assert install(empty, tmp_path / "data") == 0
    assert uninstall(empty) == 0
    assert json.loads(empty.read_text()) == {"theme": "dark"}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/opt/venv/bin/mnemo-otel hook --data-dir /d", True),
        ("'/usr/bin/python3' -P -m mnemo_otel hook", True),
        ("mnemo-otel hook", True),
        ("mnemo-otel run", False),
        ("my-hook mnemo-otel", False),
        ("echo hook", False),
        ("unbalanced 'quote", False),
    ],
)
def test_is_ours(command: str, expected: bool) -> None:
    assert is_ours(command) is expected
