from __future__ import annotations

from pathlib import Path

from mnemo_otel.transcripts.discovery import default_roots, discover


def test_discover__finds_sessions_and_subagent_transcripts_only(tmp_path: Path) -> None:
    project = tmp_path / "-home-u-proj"
    (project / "s1" / "subagents").mkdir(parents=True)
    (project / "s1" / "tool-results").mkdir()
    wanted = [project / "s1.jsonl", project / "agent-x.jsonl", project / "s1" / "subagents" / "agent-y.jsonl"]
    for path in wanted:
        path.write_text("")
    (project / "s1" / "tool-results" / "t.txt").write_text("")
    (project / "s1" / "subagents" / "agent-y.meta.json").write_text("{}")
    found = {t.path for t in discover([tmp_path])}
    assert found == set(wanted)
    rel = {t.relative_path for t in discover([tmp_path])}
    assert "-home-u-proj/s1/subagents/agent-y.jsonl" in rel


def test_discover__accepts_a_single_file_as_root(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text("")
    assert [t.path for t in discover([path])] == [path]


def test_default_roots__honours_claude_config_dir(tmp_path: Path) -> None:
    assert default_roots({"CLAUDE_CONFIG_DIR": str(tmp_path)}) == [tmp_path / "projects"]
    assert default_roots({}) == [Path.home() / ".claude" / "projects"]


def test_discover__yields_regular_files_only_and_reports_fifos_and_devices(tmp_path: Path) -> None:
    import os

    (tmp_path / "a.jsonl").write_text("")
    os.mkfifo(tmp_path / "pipe.jsonl")
    (tmp_path / "null.jsonl").symlink_to("/dev/null")
    (tmp_path / "dangling.jsonl").symlink_to(tmp_path / "nowhere")
    (tmp_path / "dir.jsonl").mkdir()
    (tmp_path / "dir.jsonl" / "b.jsonl").write_text("")
    (tmp_path / "linked.jsonl").symlink_to(tmp_path / "a.jsonl")
    reported: list[tuple[str, str]] = []
    found = [
        t.path.relative_to(tmp_path) for t in discover([tmp_path], lambda p, k: reported.append((p.name, k)))
    ]
    assert found == [Path("a.jsonl"), Path("linked.jsonl"), Path("dir.jsonl/b.jsonl")]
    assert sorted(reported) == [("null.jsonl", "device"), ("pipe.jsonl", "fifo")]
    reported.clear()
    assert list(discover([tmp_path / "pipe.jsonl"], lambda p, k: reported.append((p.name, k)))) == []
    assert reported == [("pipe.jsonl", "fifo")]


def test_open_regular__refuses_a_fifo_at_once_instead_of_waiting_for_a_writer(tmp_path: Path) -> None:
    import os

    import pytest

    from mnemo_otel.transcripts.reader import NotRegularFile, open_regular

    os.mkfifo(tmp_path / "pipe.jsonl")
    with pytest.raises(NotRegularFile, match="fifo"):
        open_regular(tmp_path / "pipe.jsonl")
    (tmp_path / "a.jsonl").write_bytes(b"x\n")
    with open_regular(tmp_path / "a.jsonl") as f:
        assert f.read() == b"x\n"
