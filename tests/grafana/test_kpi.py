"""The KPI row's loss and witness panels: what they read, where they sit, and that the scenarios
evaluate exactly the shipped expressions (witness.yaml's ``promql_expr_test``)."""

from __future__ import annotations

import itertools
from typing import Any

from mnemo_otel.grafana.slo import Recorded
from mnemo_otel.grafana.spec import PanelId
from mnemo_otel.telemetry import names
from tests.grafana._paths import GRAFANA_DIR, SCENARIOS
from tests.grafana._promql import load

LAG_PANEL = 56
HEARTBEAT_PANEL = 55


def _kpi_row() -> dict[int, dict[str, Any]]:
    dashboard: dict[str, Any] = load(GRAFANA_DIR / "dashboards" / "mnemo-importer.json")
    return {panel["id"]: panel for panel in dashboard["panels"] if panel["gridPos"]["y"] == 0}


def _exprs(panel: dict[str, Any]) -> list[str]:
    return [target["expr"] for target in panel["targets"]]


def _scenario_exprs() -> set[str]:
    tests = load(SCENARIOS / "witness.yaml")["tests"]
    return {case["expr"] for test in tests for case in test.get("promql_expr_test", [])}


def test_lines_lost__shows_the_source_the_scrub_and_the_witness_side_by_side() -> None:
    panel = _kpi_row()[PanelId.LINES_LOST]
    source, scrub, witness = _exprs(panel)
    assert source == Recorded.LOST_30D
    assert names.VERIFY_MISSING.prometheus in scrub
    assert names.WITNESS_UNARCHIVED.prometheus in witness
    assert panel["options"]["orientation"] == "vertical"
    assert len({target["legendFormat"] for target in panel["targets"]}) == 3


def test_archive_lag__is_the_witness_p99_next_to_the_heartbeat() -> None:
    row = _kpi_row()
    heartbeat, lag = row[HEARTBEAT_PANEL]["gridPos"], row[LAG_PANEL]["gridPos"]
    assert lag["x"] == heartbeat["x"] + heartbeat["w"]
    (expr,) = _exprs(row[LAG_PANEL])
    assert expr.startswith("histogram_quantile(0.99,") and f"{names.WITNESS_LAG.prometheus}_bucket" in expr


def test_witness_panel__reads_off_when_nothing_was_heard() -> None:
    panel = _kpi_row()[PanelId.WITNESS_HEARD]
    assert panel["fieldConfig"]["defaults"]["noValue"] == "off"
    (expr,) = _exprs(panel)
    assert names.WITNESS_LAST_HEARD.prometheus in expr


def test_kpi_row__fills_the_width_once() -> None:
    spans = sorted((p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"]) for p in _kpi_row().values())
    assert spans[0][0] == 0 and spans[-1][1] == 24
    assert all(left[1] == right[0] for left, right in itertools.pairwise(spans))


def test_scenarios__evaluate_the_shipped_witness_expressions() -> None:
    row = _kpi_row()
    shipped = {
        *_exprs(row[LAG_PANEL]),
        *_exprs(row[PanelId.WITNESS_HEARD]),
        _exprs(row[PanelId.LINES_LOST])[2],
    }
    assert shipped <= _scenario_exprs()
