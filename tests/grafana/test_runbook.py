"""Every rule links to its own section of the runbook: by default its panel of the runbook dashboard
Grafana is provisioned with (a path inside Grafana), or a published copy chosen at render time."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mnemo_otel.grafana import RULES
from mnemo_otel.grafana.render import Options, render_all
from tests.grafana._paths import GRAFANA_DIR, REPO
from tests.grafana._promql import load

RUNBOOK = REPO / "docs" / "runbook.md"
SECTION_WORDS = ("**Means.**", "**Confirm", "**Fix.**", "**Silence**")


def _slug(heading: str) -> str:
    """The anchor a Markdown renderer (GitHub, GitLab) gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _sections() -> dict[str, str]:
    parts = re.split(r"^## (.+)$", RUNBOOK.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {_slug(title): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def _rules() -> list[dict[str, Any]]:
    groups = load(GRAFANA_DIR / "provisioning" / "alerting" / "rules.yaml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _provisioned_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard Grafana loads (the provider's folder is grafana/dashboards), by uid."""
    loaded = [
        json.loads(path.read_text(encoding="utf-8")) for path in (GRAFANA_DIR / "dashboards").glob("*.json")
    ]
    return {dashboard["uid"]: dashboard for dashboard in loaded}


def _follow(url: str) -> dict[str, Any]:
    """The panel a Grafana path ``/d/<uid>/<slug>?viewPanel=panel-<id>`` opens."""
    parts = urlsplit(url)
    assert not parts.scheme and not parts.netloc, f"{url} must stay inside Grafana"
    match = re.fullmatch(r"/d/([\w-]+)(?:/[\w-]+)?", parts.path)
    assert match, url
    dashboard = _provisioned_dashboards()[match.group(1)]
    (view,) = parse_qs(parts.query)["viewPanel"]
    key = view.removeprefix("panel-")
    (panel,) = [panel for panel in dashboard["panels"] if str(panel["id"]) == key]
    return dict(panel)


def _text(markdown: str) -> str:
    """Section text as compared: links inside the runbook become links inside the dashboard."""
    return re.sub(r"\]\([^)]*\)", "]()", markdown).strip()


def test_every_provisioned_rule__links_to_its_runbook_section_inside_grafana() -> None:
    sections = _sections()
    rules = _rules()
    assert len(rules) == len(RULES)
    for rule in rules:
        panel = _follow(rule["annotations"]["runbook_url"])
        assert panel["title"] == rule["title"]
        assert panel["type"] == "text" and panel["options"]["mode"] == "markdown"
        section = sections[_slug(rule["title"])]
        assert _text(panel["options"]["content"]) == _text(section), rule["title"]


def test_runbook_dashboard__holds_every_section_and_its_own_links_resolve() -> None:
    (dashboard,) = [d for d in _provisioned_dashboards().values() if d["title"] == "Mnemo runbook"]
    titles = [panel["title"] for panel in dashboard["panels"]]
    headings = re.findall(r"^## (.+)$", RUNBOOK.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert titles == ["Mnemo runbook", *headings]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(titles)
    for panel in dashboard["panels"]:
        for url in re.findall(r"\]\((/d/[^)]*)\)", panel["options"]["content"]):
            assert _follow(url)["type"] == "text", url


def test_every_rule_section__says_what_it_means_and_how_to_confirm_fix_and_silence() -> None:
    sections = _sections()
    for spec in RULES:
        body = sections[spec.runbook_anchor]
        missing = [word for word in SECTION_WORDS if word not in body]
        assert not missing, (spec.name, missing)


BASE = "https://forge.example/mnemo-otel/blob/main/docs/runbook.md"


def _urls(out: Path) -> dict[str, str]:
    (group,) = load(out / "provisioning" / "alerting" / "rules.yaml")["groups"]
    return {rule["title"]: rule["annotations"]["runbook_url"] for rule in group["rules"]}


def test_runbook_base__is_chosen_at_render_time(tmp_path: Path) -> None:
    render_all(tmp_path, Options(runbook_url=BASE))
    urls = _urls(tmp_path)
    assert urls["MnemoWatchdog"] == f"{BASE}#mnemowatchdog"
    assert all(url.startswith(f"{BASE}#") for url in urls.values())


def test_cli_render__takes_the_runbook_base(tmp_path: Path) -> None:
    args = ["grafana", "render", "--out", str(tmp_path), "--runbook-url", BASE]
    subprocess.run([sys.executable, "-m", "mnemo_otel", *args], cwd=REPO, capture_output=True, check=True)
    assert _urls(tmp_path)["MnemoHeartbeatStale"] == f"{BASE}#mnemoheartbeatstale"
