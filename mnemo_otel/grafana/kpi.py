"""The dashboard's top row: each of the seed's KPIs against its target, from the recorded SLIs.

Every panel names its target in its title and colours by it; the recovery panel draws the target as a
line. Values come from ``slo.py``'s recording rules, so the row costs Grafana one cheap query each.
"""

from __future__ import annotations

from typing import Any, Final

from mnemo_otel.grafana.panels import stat, steps, target, timeseries
from mnemo_otel.grafana.slo import AVAILABILITY, IMPORT_SUCCESS, RECOVERY_TARGET_S, SLO_PERIOD, Recorded
from mnemo_otel.grafana.spec import EXPORT_INTERVAL_S, HEARTBEAT_STALE_AFTER_S, PanelId, number

__all__ = ("KPI_HEIGHT", "kpi_row")

KPI_HEIGHT: Final = 5
_WIDTHS: Final = (4, 4, 4, 6, 3, 3)
_PERIOD: Final = SLO_PERIOD.replace("d", " d")
_OK, _WARN, _BAD = "green", "orange", "red"


def _percent(value: float) -> str:
    return f"{number(round(value * 100, 6))} %"


def _objective_stat(pid: int, title: str, expr: str, target_ratio: float) -> dict[str, Any]:
    panel = stat(pid, title, expr, "percentunit", steps((_BAD, None), (_OK, target_ratio)))
    panel["fieldConfig"]["defaults"]["decimals"] = 2
    return panel


def _budget_left() -> dict[str, Any]:
    """Share of the period's error budget not yet spent; negative once the objective is missed."""
    spent = f"(1 - {Recorded.AVAILABILITY_30D}) / {number(AVAILABILITY.budget)}"
    panel = stat(
        51,
        f"Availability error budget left ({_percent(AVAILABILITY.budget)} of {_PERIOD})",
        f"1 - {spent}",
        "percentunit",
        steps((_BAD, None), (_WARN, 0), (_OK, 0.25)),
    )
    panel["fieldConfig"]["defaults"]["decimals"] = 0
    return panel


def _recoveries() -> dict[str, Any]:
    """Each outage's length as a point (``max_over_time`` keeps short-lived samples at any step)."""
    expr = f"max by (service_instance_id) (max_over_time({Recorded.RECOVERY}[$__interval]))"
    panel = timeseries(
        53,
        f"Recovery times, 7 d (target < {RECOVERY_TARGET_S} s)",
        (0, 0, 6, KPI_HEIGHT),
        "s",
        [target(expr, "{{service_instance_id}}")],
    )
    panel["timeFrom"] = "7d"
    panel["fieldConfig"]["defaults"].update(
        thresholds=steps((_OK, None), (_BAD, RECOVERY_TARGET_S)),
        custom={"drawStyle": "points", "pointSize": 8, "thresholdsStyle": {"mode": "line"}},
        color={"mode": "palette-classic"},
    )
    return panel


def _lost() -> dict[str, Any]:
    panel = stat(54, f"Lost, {_PERIOD} (target 0)", Recorded.LOST_30D, "bytes", steps((_OK, None), (_BAD, 1)))
    panel["fieldConfig"]["defaults"]["noValue"] = "not measured"
    return panel


def _heartbeat_age() -> dict[str, Any]:
    panel = stat(
        55,
        f"Heartbeat age (target < {HEARTBEAT_STALE_AFTER_S} s)",
        f"max({Recorded.HEARTBEAT_AGE})",
        "s",
        steps((_OK, None), (_WARN, 2 * EXPORT_INTERVAL_S), (_BAD, HEARTBEAT_STALE_AFTER_S)),
    )
    panel["fieldConfig"]["defaults"]["noValue"] = "no heartbeat"
    return panel


def kpi_row() -> list[dict[str, Any]]:
    """Availability, its budget, import success, recoveries, loss and heartbeat age, left to right."""
    panels = [
        _objective_stat(
            PanelId.AVAILABILITY,
            f"Availability, {_PERIOD} (target {_percent(AVAILABILITY.target)})",
            Recorded.AVAILABILITY_30D,
            AVAILABILITY.target,
        ),
        _budget_left(),
        _objective_stat(
            PanelId.IMPORT_SUCCESS,
            f"Import success, {_PERIOD} (target {_percent(IMPORT_SUCCESS.target)})",
            Recorded.IMPORT_SUCCESS_30D,
            IMPORT_SUCCESS.target,
        ),
        _recoveries(),
        _lost(),
        _heartbeat_age(),
    ]
    x = 0
    for panel, width in zip(panels, _WIDTHS, strict=True):
        panel["gridPos"].update(x=x, y=0, w=width, h=KPI_HEIGHT)
        x += width
    return panels
