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
