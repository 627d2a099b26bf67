"""Every rule links to its own section of the repository's runbook, and the link's base is a render choice."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def test_every_provisioned_rule__links_to_its_runbook_section() -> None:
    sections = _sections()
    rules = _rules()
    assert len(rules) == len(RULES)
    for rule in rules:
        url = rule["annotations"]["runbook_url"]
        base, _, anchor = url.partition("#")
        assert (REPO / base).resolve() == RUNBOOK, url
        assert anchor == _slug(rule["title"]), url
        assert anchor in sections, f"no runbook section for {rule['title']}"


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
