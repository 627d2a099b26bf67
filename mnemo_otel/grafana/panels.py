"""Building blocks of the dashboard's panels: Prometheus targets, thresholds, stats and time series."""

from __future__ import annotations

from typing import Any, Final

from mnemo_otel.grafana.spec import DATASOURCE_PROMETHEUS

__all__ = ("PROMETHEUS", "panel", "stat", "steps", "target", "timeseries")

PROMETHEUS: Final = {"type": "prometheus", "uid": DATASOURCE_PROMETHEUS}


def target(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False) -> dict[str, Any]:
    return {
        "refId": ref,
        "datasource": PROMETHEUS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend or "__auto",
        "instant": instant,
        "range": not instant,
    }


def steps(*colors: tuple[str, float | None]) -> dict[str, Any]:
    """Absolute thresholds: each colour applies from its value up (the first one from -inf)."""
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for color, value in colors]}


def panel(
    pid: int, kind: str, title: str, grid: tuple[int, int, int, int], targets: list[dict[str, Any]]
) -> dict[str, Any]:
    x, y, w, h = grid
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "datasource": targets[0]["datasource"] if targets else None,
        "targets": targets,
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }


def stat(pid: int, title: str, expr: str, unit: str, thresholds: dict[str, Any]) -> dict[str, Any]:
    """A one-value stat coloured by ``thresholds``; the caller sets its place."""
    built = panel(pid, "stat", title, (0, 0, 4, 4), [target(expr, instant=True)])
    built["fieldConfig"]["defaults"] = {
        "unit": unit,
        "thresholds": thresholds,
        "color": {"mode": "thresholds"},
    }
    built["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"}
    return built


def timeseries(
    pid: int, title: str, grid: tuple[int, int, int, int], unit: str, targets: list[dict[str, Any]]
) -> dict[str, Any]:
    built = panel(pid, "timeseries", title, grid, targets)
    built["fieldConfig"]["defaults"] = {"unit": unit}
    built["options"] = {
        "legend": {"displayMode": "list", "placement": "bottom"},
        "tooltip": {"mode": "multi"},
    }
    return built
