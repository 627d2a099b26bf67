"""Grafana's server-side expressions for one evaluation: reduce, math, threshold, classic conditions.

Semantics follow ``pkg/expr`` (``commands.go``, ``threshold.go``, ``hysteresis.go``,
``mathexp/reduce.go``, ``classic/``): NoData flows through every node; a threshold maps a value to
1/0 (null stays null); reduce turns a series into a number (strict mode lets NaN/null win,
``dropNN`` drops them, ``replaceNN`` replaces them). The condition's values then become one result
per label set (``evaluateExecutionResult``): 0 is Normal, anything else (NaN too) is Alerting, all
NoData is NoData for the rule, time series or duplicate label sets are an error.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from testkit.grafana_math import parse_math
from testkit.grafana_rules import Expression, Rule, Unsupported
from testkit.grafana_values import NO_DATA, Labels, NoData, Number, Scalar, SeriesValue, Value

__all__ = ("ConditionOutcome", "EvaluationError", "Fingerprint", "evaluate_condition", "fingerprint")

Fingerprint = frozenset[tuple[str, str]]


class EvaluationError(RuntimeError):
    """The rule's evaluation fails (Grafana's Error result): a query or expression error."""


def fingerprint(labels: Labels) -> Fingerprint:
    return frozenset(labels.items())


@dataclass(frozen=True, slots=True)
class ConditionOutcome:
    """``no_data`` for the whole rule, or one (labels, state) per instance; state Normal/Alerting/NoData."""

    no_data: bool
    results: tuple[tuple[Labels, str], ...] = ()


_PREDICATES: dict[str, Callable[[float, list[float]], bool]] = {
    "gt": lambda v, p: v > p[0],
    "lt": lambda v, p: v < p[0],
    "eq": lambda v, p: v == p[0],
    "ne": lambda v, p: v != p[0],
    "gte": lambda v, p: v >= p[0],
    "lte": lambda v, p: v <= p[0],
    "within_range": lambda v, p: p[0] < v < p[1],
    "outside_range": lambda v, p: v < p[0] or v > p[1],
    "within_range_included": lambda v, p: p[0] <= v <= p[1],
    "outside_range_included": lambda v, p: v <= p[0] or v >= p[1],
}


def _predicate(evaluator: Mapping[str, Any], invert: bool = False) -> Callable[[float | None], float | None]:
    kind = str(evaluator.get("type"))
    params = [float(p) for p in evaluator.get("params") or []]
    if kind not in _PREDICATES:
        raise Unsupported(f"threshold evaluator {kind!r}")
    if len(params) < (2 if "range" in kind else 1):
        raise Unsupported(f"threshold evaluator {kind!r} with params {params}")
    test = _PREDICATES[kind]

    def apply(value: float | None) -> float | None:
        if value is None:
            return None
        return 1.0 if test(value, params) != invert else 0.0

    return apply


def _map(values: list[Value], fn: Callable[[float | None], float | None]) -> list[Value]:
    out: list[Value] = []
    for v in values:
        if isinstance(v, Number):
            out.append(Number(v.labels, fn(v.value)))
        elif isinstance(v, SeriesValue):
            out.append(SeriesValue(v.labels, tuple((t, fn(x)) for t, x in v.points)))
        elif isinstance(v, Scalar):
            out.append(Scalar(fn(v.value)))
        else:
            out.append(NO_DATA)
    return out


def _threshold(model: Mapping[str, Any], source: list[Value], loaded: set[Fingerprint]) -> list[Value]:
    conditions = model.get("conditions") or []
    if not isinstance(conditions, list) or len(conditions) != 1:
        raise Unsupported("threshold expression requires exactly one condition")
    condition = conditions[0]
    load = _predicate(condition["evaluator"])
    if "unloadEvaluator" not in condition or not condition["unloadEvaluator"]:
        return _map(source, load)
    unload = _predicate(condition["unloadEvaluator"], invert=True)
    if any(isinstance(v, NoData) for v in source):
        return [NO_DATA]
    loaded_values = [v for v in source if fingerprint(getattr(v, "labels", {})) in loaded]
    others = [v for v in source if fingerprint(getattr(v, "labels", {})) not in loaded]
    return _map(others, load) + _map(loaded_values, unload)


def _reduce_points(reducer: str, points: list[float | None]) -> float | None:
    if reducer == "count":
        return float(len(points))
    if reducer == "last":
        return points[-1] if points else math.nan
    if reducer in ("min", "max") and not points:
        return math.nan
    if any(p is None or math.isnan(p) for p in points):
        return math.nan
    numbers = [p for p in points if p is not None]
    if reducer == "sum":
        return math.fsum(numbers)
    if reducer == "mean":
        return math.fsum(numbers) / len(numbers) if numbers else math.nan
    if reducer in ("min", "max"):
        return min(numbers) if reducer == "min" else max(numbers)
    raise Unsupported(f"reducer {reducer!r}")


def _reduce(model: Mapping[str, Any], source: list[Value]) -> list[Value]:
    reducer = str(model.get("reducer", "")).lower()
    settings = model.get("settings") or {}
    mode = settings.get("mode", "") if isinstance(settings, dict) else ""
    replacement = float(settings.get("replaceWithValue", 0)) if isinstance(settings, dict) else 0.0

    def map_in(v: float | None) -> float | None:
        if mode and (v is None or math.isnan(v) or math.isinf(v)):
            return None if mode == "dropNN" else replacement
        return v

    def map_out(v: float | None) -> float | None:
        if mode and v is not None and math.isnan(v):
            return None if mode == "dropNN" else replacement
        return v

    if mode not in ("", "dropNN", "replaceNN"):
        raise Unsupported(f"reduce mode {mode!r}")
    out: list[Value] = []
    for v in source:
        if isinstance(v, SeriesValue):
            points = [map_in(p) for _, p in v.points]
            points = [p for p in points if p is not None] if mode else points
            out.append(
                Number(
                    v.labels,
                    map_out(_reduce_points(reducer, points)) if mode else _reduce_points(reducer, points),
                )
            )
        elif isinstance(v, Number):
            value = map_in(v.value) if mode else v.value
            if mode and value is None:
                continue
            out.append(Number(v.labels, value))
        elif isinstance(v, NoData):
            out.append(NO_DATA)
        else:
            raise EvaluationError(f"can only reduce type series, got {type(v).__name__}")
    return out


_CLASSIC_REDUCERS: dict[str, Callable[[list[float]], float | None]] = {
    "avg": lambda xs: math.fsum(xs) / len(xs) if xs else None,
    "sum": lambda xs: math.fsum(xs) if xs else None,
    "min": lambda xs: min(xs) if xs else None,
    "max": lambda xs: max(xs) if xs else None,
    "count": lambda xs: float(len(xs)),
    "last": lambda xs: xs[-1] if xs else None,
    "median": lambda xs: statistics.median(xs) if xs else None,
    "count_non_null": lambda xs: float(len(xs)) if xs else None,
}


def _classic(model: Mapping[str, Any], nodes: Mapping[str, list[Value]]) -> list[Value]:
    """``classic_conditions``: every series reduced and tested; one unlabelled result for the rule."""
    firing = no_data = False
    for index, condition in enumerate(model.get("conditions") or []):
        reducer = _CLASSIC_REDUCERS.get(condition["reducer"]["type"])
        if reducer is None:
            raise Unsupported(f"classic reducer {condition['reducer']['type']!r}")
        evaluator = condition["evaluator"]
        values = nodes[condition["query"]["params"][0]]
        matches, nulls = 0, 0
        for v in values:
            if isinstance(v, SeriesValue):
                reduced = reducer([p for _, p in v.points if p is not None and not math.isnan(p)])
            else:
                reduced = v.value if isinstance(v, Number | Scalar) else None
            nulls += reduced is None
            if evaluator["type"] == "no_value":
                matches += reduced is None
            elif reduced is not None and _predicate(evaluator)(reduced) == 1.0:
                matches += 1
        this_firing, this_no_data = matches > 0, len(values) == nulls
        operator = (condition.get("operator") or {}).get("type", "and")
        if index == 0:
            firing, no_data = this_firing, this_no_data
        elif operator == "or":
            firing, no_data = firing or this_firing, no_data or this_no_data
        else:
            firing, no_data = firing and this_firing, no_data and this_no_data
    return [Number({}, None if no_data else (1.0 if firing else 0.0))]


def _node(expression: Expression, nodes: Mapping[str, list[Value]], loaded: set[Fingerprint]) -> list[Value]:
    model = expression.model
    if expression.type == "math":
        return parse_math(str(model["expression"])).evaluate(dict(nodes))
    if expression.type == "classic_conditions":
        return _classic(model, nodes)
    source = nodes[str(model.get("expression", "")).lstrip("$")]
    if expression.type == "threshold":
        return _threshold(model, source, loaded)
    if expression.type == "reduce":
        return _reduce(model, source)
    raise Unsupported(f"expression type {expression.type!r} ({expression.ref_id})")


def _dependencies(expression: Expression) -> set[str]:
    model = expression.model
    if expression.type == "math":
        return parse_math(str(model["expression"])).variables
    if expression.type == "classic_conditions":
        return {c["query"]["params"][0] for c in model.get("conditions") or []}
    return {str(model.get("expression", "")).lstrip("$")}


def _results(values: list[Value]) -> ConditionOutcome:
    if not values or all(
        isinstance(v, NoData)
        or (isinstance(v, Number | Scalar) and v.value is None and not getattr(v, "labels", None))
        for v in values
    ):
        return ConditionOutcome(no_data=True)
    seen: set[Fingerprint] = set()
    results: list[tuple[Labels, str]] = []
    for v in values:
        if isinstance(v, SeriesValue):
            raise EvaluationError("looks like time series data, only reduced data can be alerted on")
        labels = v.labels if isinstance(v, Number) else {}
        value = v.value if isinstance(v, Number | Scalar) else None
        if fingerprint(labels) in seen:
            raise EvaluationError(f"frame cannot uniquely be identified by its labels: {labels}")
        seen.add(fingerprint(labels))
        state = "NoData" if value is None else ("Normal" if value == 0 else "Alerting")
        results.append((labels, state))
    return ConditionOutcome(no_data=False, results=tuple(results))


def evaluate_condition(
    rule: Rule, data: Mapping[str, list[Value]], loaded: set[Fingerprint]
) -> ConditionOutcome:
    """Run the expression graph down to the rule's condition; ``data`` holds each query's values."""
    nodes: dict[str, list[Value]] = dict(data)
    by_ref = {e.ref_id: e for e in rule.expressions}

    def compute(ref: str, trail: tuple[str, ...]) -> list[Value]:
        if ref in nodes:
            return nodes[ref]
        if ref not in by_ref or ref in trail:
            raise Unsupported(f"rule {rule.title!r}: node {ref!r} is missing or cyclic")
        for dep in _dependencies(by_ref[ref]):
            compute(dep, (*trail, ref))
        nodes[ref] = _node(by_ref[ref], nodes, loaded)
        return nodes[ref]

    return _results(compute(rule.condition, ()))
