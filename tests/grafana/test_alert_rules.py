"""The alert logic, proven by promtool on the Prometheus mirror of the spec."""

from __future__ import annotations

import inspect
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mnemo_otel.grafana import RULES
from mnemo_otel.grafana.slo import recording_rules
from mnemo_otel.grafana.spec import (
    EVALUATION_INTERVAL_S,
    EXPORT_INTERVAL_S,
    HEARTBEAT_FIRES_WITHIN_S,
    HEARTBEAT_STALE_AFTER_S,
    IDLE_BEAT_S,
    OUTAGE_BEAT_S,
    RULE_GROUP,
    Severity,
)
from mnemo_otel.settings import ImportSettings, RetrySettings
from mnemo_otel.store.postgres import PostgresSink
from mnemo_otel.telemetry.setup import DEFAULT_EXPORT_INTERVAL_MS
from tests.grafana._paths import GRAFANA_DIR, SCENARIOS
from tests.grafana._promql import load

MIRROR = GRAFANA_DIR / "promtool" / "rules.yaml"
SCENARIO_FILES = sorted(SCENARIOS.glob("*.yaml"))


def _run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, check=False)


def _alert_group() -> dict[str, Any]:
    groups: list[dict[str, Any]] = load(MIRROR)["groups"]
    return next(group for group in groups if group["name"] == RULE_GROUP)


def test_mirror__passes_promtool_check_rules(promtool: str) -> None:
    result = _run(promtool, "check", "rules", str(MIRROR))
    assert result.returncode == 0, result.stdout + result.stderr
    recorded = sum(len(group["rules"]) for group in recording_rules()["groups"])
    assert f"{len(RULES) + recorded} rules found" in result.stdout


def test_mirror__records_the_slis_exactly_as_prometheus_does() -> None:
    """The burn-rate queries read recorded series: promtool must compute the ones compose loads."""
    shipped = load(GRAFANA_DIR / "prometheus" / "recording-rules.yaml")["groups"]
    assert [g for g in load(MIRROR)["groups"] if g["name"] != RULE_GROUP] == shipped


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
    always = {rule.name for rule in RULES if rule.severity is Severity.NONE}
    assert names <= firing, f"never shown firing: {names - firing}"
    assert names - always <= quiet, f"never shown quiet: {names - always - quiet}"
    assert not always & quiet, f"a dead man's switch shown quiet: {always & quiet}"


def test_mirror__states_the_specs_conditions() -> None:
    rules = _alert_group()["rules"]
    assert [(r["alert"], r["expr"], r["for"]) for r in rules] == [
        (spec.name, spec.condition, spec.pending) for spec in RULES
    ]


def test_heartbeat_cadence__is_the_importers_defaults() -> None:
    """The threshold is derived from these; a cadence change must retune the rule and its scenarios."""
    connect_timeout = inspect.signature(PostgresSink.open).parameters["connect_timeout"].default
    assert ImportSettings.model_fields["idle_beat_seconds"].default == IDLE_BEAT_S
    assert RetrySettings.model_fields["max_seconds"].default + connect_timeout == OUTAGE_BEAT_S
    assert DEFAULT_EXPORT_INTERVAL_MS == EXPORT_INTERVAL_S * 1000


def test_heartbeat_threshold__clears_every_live_age_and_fires_within_two_minutes() -> None:
    (spec,) = [rule for rule in RULES if rule.uid == "mnemo-heartbeat-stale"]
    live_worst = max(IDLE_BEAT_S, OUTAGE_BEAT_S) + EXPORT_INTERVAL_S
    assert spec.threshold == HEARTBEAT_STALE_AFTER_S >= live_worst + EXPORT_INTERVAL_S
    assert spec.pending == f"{EVALUATION_INTERVAL_S}s"
    assert HEARTBEAT_FIRES_WITHIN_S == spec.threshold + 2 * EVALUATION_INTERVAL_S <= 120
