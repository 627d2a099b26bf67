"""The dashboard's fleet parts: the ``host`` variable, its filter on importer queries, the fleet table.

Every importer series carries ``service_instance_id`` (the host id). The filter is applied to the
finished panels rather than written into each query, so a panel added later is per host by default.
"""

from __future__ import annotations

import re
from typing import Any, Final

from mnemo_otel.grafana.spec import ATTR_FLEET_HOST, DATASOURCE_PROMETHEUS, PER_HOST
from mnemo_otel.telemetry import names

__all__ = (
    "FLEET_TABLE_PANEL",
    "HOST_VARIABLE",
    "fleet_table",
    "host_variable",
    "per_host",
    "restrict_panels",
)

HOST_VARIABLE: Final = "host"
FLEET_TABLE_PANEL: Final = 40
_PROM: Final = {"type": "prometheus", "uid": DATASOURCE_PROMETHEUS}
_TABLE_MEMORY: Final = "1d"  # hosts seen within a day get a row
_HOST_MATCHER: Final = f'{PER_HOST}=~"${HOST_VARIABLE}"'
# The importer's own series (not the collector's): the names the contract declares.
_IMPORTER_SERIES: Final = re.compile(
    r"\b(" + "|".join(sorted((re.escape(m.prometheus) for m in names.METRICS), key=len, reverse=True)) + r")"
    r"(_bucket|_count|_sum)?\b(\{)?"
)


def host_variable() -> dict[str, Any]:
    """Hosts that reported a heartbeat; All (the default) also matches series without a host label."""
    query = f"label_values({names.HEARTBEAT.prometheus}, {PER_HOST})"
    return {
        "name": HOST_VARIABLE,
        "label": "Host",
        "type": "query",
        "datasource": _PROM,
        "definition": query,
        "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


def per_host(expr: str) -> str:
    """``expr`` with every importer series restricted to the selected hosts."""

    def restrict(match: re.Match[str]) -> str:
        name = match.group(1) + (match.group(2) or "")
        return f"{name}{{{_HOST_MATCHER}," if match.group(3) else f"{name}{{{_HOST_MATCHER}}}"

    return _IMPORTER_SERIES.sub(restrict, expr)


def restrict_panels(panels: list[dict[str, Any]]) -> None:
    """Metrics, traces and logs of the selected hosts only (in Loki and Tempo the host id is the
    resource attribute, kept as structured metadata and a resource attribute respectively)."""
    for panel in panels:
        for target in panel.get("targets", []):
            kind = target.get("datasource", {}).get("type")
            if kind == "prometheus":
                target["expr"] = per_host(target["expr"])
            elif kind == "loki":
                target["expr"] += f' | {PER_HOST}=~"${HOST_VARIABLE}"'
            elif kind == "tempo" and target.get("query", "").endswith(" }"):
                query = target["query"].removesuffix(" }")
                target["query"] = f'{query} && resource.service.instance.id =~ "${HOST_VARIABLE}" }}'


def _column(ref: str, expr: str) -> dict[str, Any]:
    return {
        "refId": ref,
        "datasource": _PROM,
        "editorMode": "code",
        "expr": expr,
        "format": "table",
        "instant": True,
        "range": False,
    }


def _unit(field: str, unit: str) -> dict[str, Any]:
    return {"matcher": {"id": "byName", "options": field}, "properties": [{"id": "unit", "value": unit}]}


def fleet_table(grid: tuple[int, int, int, int]) -> dict[str, Any]:
    """One row per host: version, heartbeat age, backlog age, time since its last import, uptime.

    Members that no longer report (dead, not retired) keep their row through the membership gauge.
    """
    hb, age = names.HEARTBEAT.prometheus, names.BACKLOG_OLDEST_AGE.prometheus
    last, uptime = names.LAST_SUCCESS.prometheus, names.PROCESS_UPTIME.prometheus
    by = f"max by ({PER_HOST})"
    members = (
        f"{by} (label_join(max by ({ATTR_FLEET_HOST}) ({names.FLEET_MEMBER.prometheus}), "
        f'"{PER_HOST}", "", "{ATTR_FLEET_HOST}"))'
    )
    columns = {
        "A": ("Heartbeat age", f"time() - {by} (last_over_time({hb}[{_TABLE_MEMORY}]))", "s"),
        "B": ("Backlog age", f"{by} (last_over_time({age}[{_TABLE_MEMORY}]))", "s"),
        "C": ("Since last import", f"time() - {by} (last_over_time({last}[7d]))", "s"),
        "D": ("Uptime", f"max by ({PER_HOST}, service_version) ({uptime})", "s"),
        "E": ("Member", members, "none"),
    }
    x, y, w, h = grid
    rename = {f"Value #{ref}": title for ref, (title, _, _) in columns.items()}
    rename |= {PER_HOST: "Host", "service_version": "Version"}
    order = ["Host", "Version", *(title for title, _, _ in columns.values())]
    return {
        "id": FLEET_TABLE_PANEL,
        "type": "table",
        "title": "Fleet: every host",
        "description": "Hosts that must beat (members) and every host seen within a day. Retire a "
        "decommissioned host with `mnemo-otel hosts retire ID`.",
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "datasource": _PROM,
        "targets": [_column(ref, expr) for ref, (_, expr, _) in columns.items()],
        "transformations": [
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True},
                    "renameByName": rename,
                    "indexByName": {name: i for i, name in enumerate(order)},
                },
            },
        ],
        "fieldConfig": {
            "defaults": {},
            "overrides": [_unit(title, unit) for title, _, unit in columns.values()],
        },
        "options": {"showHeader": True, "sortBy": [{"displayName": "Heartbeat age", "desc": True}]},
    }
