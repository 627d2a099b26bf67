"""The alert rules Grafana loads from ``grafana/provisioning/alerting``, read as Grafana reads them.

Field names and defaults follow Grafana's file provisioning (``rules_types.go``): an empty
``noDataState`` is ``NoData``, an empty ``execErrState`` is ``Alerting``, ``for`` and
``keepFiringFor`` default to 0, ``missing_series_evals_to_resolve`` to 2. Anything this reader does
not model (another datasource type, templated labels, an unknown expression) raises
:class:`Unsupported` so that a rule is never silently evaluated as something it is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from testkit.rule_scenarios import parse_duration

__all__ = ("DataQuery", "Expression", "Rule", "Unsupported", "load_rules")

EXPRESSION_UIDS = frozenset(("__expr__", "-100"))
NO_DATA_STATES = frozenset(("NoData", "Alerting", "OK", "KeepLast"))
EXEC_ERR_STATES = frozenset(("Error", "Alerting", "OK", "KeepLast"))


class Unsupported(ValueError):
    """A provisioned rule uses something the evaluator does not model."""


@dataclass(frozen=True, slots=True)
class DataQuery:
    """A Prometheus query node: evaluated at ``now - to`` (instant) or over [now-from, now-to]."""

    ref_id: str
    datasource_uid: str
    expr: str
    instant: bool
    from_s: int
    to_s: int
    interval_ms: int
    max_data_points: int
    min_interval: str


@dataclass(frozen=True, slots=True)
class Expression:
    """A server-side expression node (``datasourceUid: __expr__``): its raw model."""

    ref_id: str
    type: str
    model: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rule:
    uid: str
    title: str
    group: str
    interval_ms: int
    condition: str
    queries: tuple[DataQuery, ...]
    expressions: tuple[Expression, ...]
    for_ms: int
    keep_firing_for_ms: int
    no_data_state: str
    exec_err_state: str
    missing_series_evals: int
    paused: bool
    labels: dict[str, str] = field(default_factory=dict)


def _query(item: dict[str, Any], prometheus_uids: set[str]) -> DataQuery:
    model = item.get("model") or {}
    uid = item.get("datasourceUid", "")
    if uid not in prometheus_uids:
        raise Unsupported(f"query {item.get('refId')}: datasource {uid!r} is not a provisioned Prometheus")
    if "$__" in model.get("expr", "") or "${__" in model.get("expr", ""):
        raise Unsupported(f"query {item.get('refId')}: Grafana variables/macros in {model['expr']!r}")
    instant, ranged = bool(model.get("instant")), bool(model.get("range"))
    if instant and ranged:
        raise Unsupported(f"query {item.get('refId')}: both instant and range")
    span = item.get("relativeTimeRange") or {}
    return DataQuery(
        ref_id=str(item["refId"]),
        datasource_uid=uid,
        expr=str(model["expr"]),
        instant=instant,
        from_s=int(span.get("from", 600)),
        to_s=int(span.get("to", 0)),
        interval_ms=int(model.get("intervalMs") or 1000),
        max_data_points=int(model.get("maxDataPoints") or 43200),
        min_interval=str(model.get("interval") or ""),
    )


def _rule(raw: dict[str, Any], group: str, interval_ms: int, prometheus_uids: set[str]) -> Rule:
    title = str(raw.get("title", ""))
    try:
        if raw.get("record"):
            raise Unsupported("recording rule")
        queries, expressions = [], []
        for item in raw.get("data") or []:
            if item.get("datasourceUid") in EXPRESSION_UIDS:
                model = item.get("model") or {}
                expressions.append(Expression(str(item["refId"]), str(model.get("type")), model))
            else:
                queries.append(_query(item, prometheus_uids))
        labels = {str(k): str(v) for k, v in (raw.get("labels") or {}).items()}
        if any("{{" in v or "$" in v for v in labels.values()):
            raise Unsupported(f"templated labels {labels}")
        no_data = raw.get("noDataState") or "NoData"
        exec_err = raw.get("execErrState") or "Alerting"
        if no_data not in NO_DATA_STATES or exec_err not in EXEC_ERR_STATES:
            raise Unsupported(f"noDataState {no_data!r} / execErrState {exec_err!r}")
        refs = {q.ref_id for q in queries} | {e.ref_id for e in expressions}
        if raw.get("condition") not in refs:
            raise Unsupported(f"condition {raw.get('condition')!r} is none of {sorted(refs)}")
        return Rule(
            uid=str(raw["uid"]),
            title=title,
            group=group,
            interval_ms=interval_ms,
            condition=str(raw["condition"]),
            queries=tuple(queries),
            expressions=tuple(expressions),
            for_ms=parse_duration(raw.get("for") or "0s"),
            keep_firing_for_ms=parse_duration(raw.get("keepFiringFor") or "0s"),
            no_data_state=no_data,
            exec_err_state=exec_err,
            missing_series_evals=int(raw.get("missing_series_evals_to_resolve") or 2),
            paused=bool(raw.get("isPaused", False)),
            labels=labels,
        )
    except Unsupported as exc:
        raise Unsupported(f"rule {title!r}: {exc}") from None


def prometheus_datasources(datasources_dir: Path) -> set[str]:
    uids: set[str] = set()
    for path in sorted(datasources_dir.glob("*.y*ml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        uids |= {s["uid"] for s in document.get("datasources") or [] if s.get("type") == "prometheus"}
    return uids


def load_rules(provisioning_dir: Path) -> list[Rule]:
    """Every alert rule in ``provisioning_dir/alerting/*.yaml``, with its group's interval."""
    prometheus_uids = prometheus_datasources(provisioning_dir / "datasources")
    rules = []
    for path in sorted((provisioning_dir / "alerting").glob("*.y*ml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for group in document.get("groups") or []:
            interval_ms = parse_duration(group["interval"])
            rules += [_rule(r, group["name"], interval_ms, prometheus_uids) for r in group.get("rules") or []]
    return rules
