"""docs/ARCHITECTURE.md stays true: its telemetry table is the contract in names.py, its paths exist,
and nothing in the repository points at a design file outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from mnemo_otel.telemetry import names

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "ARCHITECTURE.md"
_ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+) \| (\w+) \| `([^`]+)` \|$")


def test_telemetry_table__lists_exactly_the_contract_metrics() -> None:
    rows = {m.group(1): m.groups()[1:] for m in map(_ROW.match, DOC.read_text().splitlines()) if m}
    expected = {
        m.name: (m.unit, m.kind.value, m.prometheus) for m in (*names.METRICS, *names.WITNESS_METRICS)
    }
    missing = sorted(set(expected) - set(rows))
    assert not missing, f"add rows for {missing} to the telemetry table in docs/ARCHITECTURE.md"
    assert sorted(set(rows) - set(expected)) == [], "the table names metrics that names.py does not"
    for name, (unit, kind, prometheus) in expected.items():
        assert rows[name] == (unit, kind, prometheus), name


def test_layout__every_module_the_map_names_exists() -> None:
    text = DOC.read_text()
    for module in re.findall(r"`((?:mnemo_otel|store|importer|transcripts|telemetry)/[\w/]+\.py)`", text):
        candidates = [REPO / module, REPO / "mnemo_otel" / module]
        assert any(p.is_file() for p in candidates), module


DESIGN_FILE = "DESIGN" + ".md"  # spelt in two parts, so this guard does not cite it either


def test_repository__points_at_no_design_file_outside_it() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = [
        path
        for path in tracked
        if path.endswith((".py", ".md", ".yaml", ".yml", ".sh", ".toml", ".sql"))
        and DESIGN_FILE in (REPO / path).read_text(encoding="utf-8", errors="replace")
        and path != "tests/test_architecture_doc.py"
    ]
    assert offenders == []
