"""The runbook as a Grafana dashboard, so every rule's ``runbook_url`` opens inside Grafana, offline.

``docs/runbook.md`` is the source: one Markdown text panel for its introduction, then one per ``## ``
section, in its order. A link ``viewPanel=panel-<id>`` opens one panel alone. A rule's panel id is
its place in ``ALL_RULES``, so ``rules.yaml`` renders without the Markdown (the stack renders its
alerting folder from the installed package, which has no docs); the other sections number on after.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

from mnemo_otel.grafana.rules import ALL_RULES
from mnemo_otel.grafana.spec import AlertSpec

__all__ = (
    "RUNBOOK_SOURCE",
    "RUNBOOK_TITLE",
    "RUNBOOK_UID",
    "anchor",
    "panel_link",
    "rule_link",
    "rule_panel_id",
    "runbook_dashboard",
    "sections",
)

RUNBOOK_UID: Final = "mnemo-runbook"
RUNBOOK_TITLE: Final = "Mnemo runbook"
RUNBOOK_SOURCE: Final = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"
"""In the repository; ``mnemo-otel grafana render`` (the committed files) runs from a checkout."""
_WIDTH: Final = 24
_HEADING = re.compile(r"^## (.+)$", re.MULTILINE)
_LOCAL_LINK = re.compile(r"\]\(#([^)\s]+)\)")


def anchor(heading: str) -> str:
    """The anchor a Markdown renderer (GitHub, GitLab) gives a heading; rule names become lower case."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def rule_panel_id(spec: AlertSpec) -> int:
    return ALL_RULES.index(spec) + 1


def panel_link(panel_id: int) -> str:
    """A path inside Grafana (so it resolves against whichever address Grafana is reached at)."""
    return f"/d/{RUNBOOK_UID}/{anchor(RUNBOOK_TITLE)}?viewPanel=panel-{panel_id}"


def rule_link(spec: AlertSpec) -> str:
    return panel_link(rule_panel_id(spec))


def sections(markdown: str) -> tuple[str, list[tuple[str, str]]]:
    """The introduction (title line dropped) and every ``## `` section as (heading, body)."""
    intro, *rest = _HEADING.split(markdown)
    intro = "\n".join(line for line in intro.splitlines() if not line.startswith("# ")).strip()
    return intro, [(title.strip(), body.strip()) for title, body in zip(rest[::2], rest[1::2], strict=True)]


def _panel_ids(headings: list[str]) -> dict[str, int]:
    by_name = {spec.name: rule_panel_id(spec) for spec in ALL_RULES}
    missing = sorted(set(by_name) - set(headings))
    if missing:
        raise ValueError(f"docs/runbook.md has no section for {', '.join(missing)}")
    ids, following = {}, len(ALL_RULES) + 2  # len + 1 is the introduction's
    for heading in headings:
        if heading in by_name:
            ids[heading] = by_name[heading]
        else:
            ids[heading], following = following, following + 1
    return ids


def _text_panel(panel_id: int, title: str, content: str, y: int) -> dict[str, Any]:
    height = max(6, min(32, 3 + content.count("\n") * 3 // 4))
    return {
        "id": panel_id,
        "type": "text",
        "title": title,
        "gridPos": {"x": 0, "y": y, "w": _WIDTH, "h": height},
        "options": {"mode": "markdown", "content": content},
    }


def runbook_dashboard(source: Path = RUNBOOK_SOURCE) -> dict[str, Any]:
    """The ``grafana/dashboards/mnemo-runbook.json`` model; links between sections stay inside it."""
    intro, parts = sections(source.read_text(encoding="utf-8"))
    ids = _panel_ids([heading for heading, _ in parts])
    by_anchor = {anchor(heading): pid for heading, pid in ids.items()}

    def local(match: re.Match[str]) -> str:
        target = by_anchor.get(match.group(1))
        return match.group(0) if target is None else f"]({panel_link(target)})"

    panels, y = [], 0
    for pid, title, body in [(len(ALL_RULES) + 1, RUNBOOK_TITLE, intro), *((ids[h], h, b) for h, b in parts)]:
        panel = _text_panel(pid, title, _LOCAL_LINK.sub(local, body), y)
        panels.append(panel)
        y += panel["gridPos"]["h"]
    return {
        "uid": RUNBOOK_UID,
        "title": RUNBOOK_TITLE,
        "description": "What each Mnemo alert means, how to confirm it, fix it, and when to silence it.",
        "tags": ["mnemo"],
        "editable": False,
        "schemaVersion": 41,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }
