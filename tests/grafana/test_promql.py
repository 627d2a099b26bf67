"""Every PromQL expression we ship parses with promtool, rules and dashboard panels alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnemo_otel.grafana import RULES
from tests.grafana._interpolate import interpolate
from tests.grafana._paths import GRAFANA_DIR
from tests.grafana._promql import check_expressions, load, without_macros


def _dashboard_exprs() -> list[str]:
    dashboard: dict[str, Any] = load(GRAFANA_DIR / "dashboards" / "mnemo-importer.json")
    return [
        without_macros(target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if target["datasource"]["type"] == "prometheus"
    ]


def _rule_exprs() -> list[str]:
    groups = load(GRAFANA_DIR / "provisioning" / "alerting" / "rules.yaml")["groups"]
    return [
        query["model"]["expr"]
        for group in groups
        for rule in group["rules"]
        for query in rule["data"]
        if query["datasourceUid"] == "prometheus"
    ]


def _correlation_exprs() -> list[str]:
    sources = load(GRAFANA_DIR / "provisioning" / "datasources" / "datasources.yaml")["datasources"]
    tempo = next(s for s in sources if s["uid"] == "tempo")
    queries = tempo["jsonData"]["tracesToMetrics"]["queries"]
    return [interpolate(q["query"], {}).replace("$__tags", 'service_name="x"') for q in queries]


def test_expressions__parse(promtool: str, tmp_path: Path) -> None:
    exprs = _rule_exprs() + _dashboard_exprs() + _correlation_exprs()
    assert len(_rule_exprs()) == len(RULES)
    assert len(_dashboard_exprs()) >= 20
    result = check_expressions(promtool, exprs, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_expressions__rejects_a_broken_expression(promtool: str, tmp_path: Path) -> None:
    result = check_expressions(promtool, ["sum(rate(x[5m])"], tmp_path)
    assert result.returncode != 0
