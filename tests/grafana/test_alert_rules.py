"""The alert logic, proven by promtool on the Prometheus mirror of the spec."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mnemo_otel.grafana import RULES
from tests.grafana._paths import GRAFANA_DIR, SCENARIOS
from tests.grafana._promql import load

MIRROR = GRAFANA_DIR / "promtool" / "rules.yaml"
SCENARIO_FILES = sorted(SCENARIOS.glob("*.yaml"))


def _run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, check=False)


def test_mirror__passes_promtool_check_rules(promtool: str) -> None:
    result = _run(promtool, "check", "rules", str(MIRROR))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULES)} rules found" in result.stdout


@pytest.mark.parametrize("scenario", SCENARIO_FILES, ids=lambda p: p.stem)
def test_scenarios__pass_promtool_test_rules(promtool: str, scenario: Path) -> None:
    result = _run(promtool, "test", "rules", str(scenario))
    assert result.returncode == 0, result.stdout + result.stderr


def test_scenarios__cover_every_rule_firing_and_quiet() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for scenario in SCENARIO_FILES:
        document = load(scenario)
        assert document["rule_files"] == ["../../../grafana/promtool/rules.yaml"], scenario.name
        for test in document["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case["exp_alerts"] else quiet).add(case["alertname"])
    names = {rule.name for rule in RULES}
    assert names <= firing, f"never shown firing: {names - firing}"
    assert names <= quiet, f"never shown quiet: {names - quiet}"


def test_mirror__states_the_specs_conditions() -> None:
    rules = load(MIRROR)["groups"][0]["rules"]
    assert [(r["alert"], r["expr"], r["for"]) for r in rules] == [
        (spec.name, spec.condition, spec.pending) for spec in RULES
    ]
