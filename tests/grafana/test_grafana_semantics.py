"""The evaluator's reading of Grafana, pinned case by case (``pkg/services/ngalert/state``, ``pkg/expr``).

These are the rules the replay relies on; each test states one Grafana behaviour that differs from,
or could be mistaken for, Prometheus's: NaN alerts, missing series linger two evaluations,
keepFiringFor is a Recovering state, no-data and error states apply to every existing instance, and
what a failing or empty evaluation sends (renamed, with its state reason).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import pytest

from testkit.grafana_math import parse_math
from testkit.grafana_rules import Expression, Rule
from testkit.grafana_sse import ConditionOutcome, EvaluationError, evaluate_condition
from testkit.grafana_state import RuleState
from testkit.grafana_values import NO_DATA, Number, Scalar, SeriesValue, Value

MIN = 60_000


def _rule(**changes: Any) -> Rule:
    threshold = Expression(
        "C", "threshold", {"expression": "A", "conditions": [{"evaluator": {"type": "gt", "params": [1]}}]}
    )
    base = Rule(
        uid="u",
        title="T",
        group="g",
        interval_ms=MIN,
        condition="C",
        queries=(),
        expressions=(threshold,),
        for_ms=2 * MIN,
        keep_firing_for_ms=0,
        no_data_state="NoData",
        exec_err_state="Error",
        missing_series_evals=2,
        paused=False,
        labels={"severity": "critical"},
    )
    return dataclasses.replace(base, **changes)


def _run(rule: Rule, outcomes: Sequence[ConditionOutcome | None]) -> list[list[str]]:
    """Per evaluation: the sorted ``host`` labels (or ``-``) of firing instances."""
    state = RuleState(rule)
    out = []
    for tick, outcome in enumerate(outcomes):
        state.advance(tick * rule.interval_ms, outcome)
        out.append(sorted(labels.get("host", "-") for labels in state.firing()))
    return out


def _alerting(*hosts: str) -> ConditionOutcome:
    return ConditionOutcome(False, tuple(({"host": h}, "Alerting") for h in hosts))


def _normal(*hosts: str) -> ConditionOutcome:
    return ConditionOutcome(False, tuple(({"host": h}, "Normal") for h in hosts))


NO = ConditionOutcome(no_data=True)


def test_for__pending_until_the_period_has_elapsed_since_pending_began() -> None:
    assert _run(_rule(), [_alerting("a")] * 4) == [[], [], ["a"], ["a"]]
    assert _run(_rule(for_ms=0), [_alerting("a")]) == [["a"]]


def test_keep_firing_for__recovering_still_fires_until_it_has_elapsed() -> None:
    rule = _rule(for_ms=0, keep_firing_for_ms=2 * MIN)
    assert _run(rule, [_alerting("a"), _normal("a"), _normal("a"), _normal("a")]) == [["a"], ["a"], ["a"], []]
    slow = dataclasses.replace(rule, for_ms=5 * MIN)
    timeline = _run(slow, [_alerting("a")] * 6 + [_normal("a"), _alerting("a")])
    assert timeline[-3:] == [["a"], ["a"], ["a"]], "firing again while Recovering skips Pending"


def test_missing_series__keeps_firing_for_missing_series_evals_then_resolves() -> None:
    rule = _rule(for_ms=0)
    assert _run(rule, [_alerting("a", "b"), _alerting("b"), _alerting("b")]) == [
        ["a", "b"],
        ["a", "b"],
        ["b"],
    ]


def test_no_data_alerting__applies_to_existing_instances_and_creates_one_when_none() -> None:
    rule = _rule(for_ms=0, no_data_state="Alerting")
    assert _run(rule, [_alerting("a"), NO, NO]) == [["a"], ["a"], ["a"]]
    assert _run(rule, [NO]) == [["-"]]
    assert _run(_rule(no_data_state="Alerting"), [NO, NO, NO]) == [[], [], ["-"]]


def test_no_data_keep_last_and_ok() -> None:
    assert _run(_rule(for_ms=0, no_data_state="KeepLast"), [_alerting("a"), NO, NO]) == [["a"], ["a"], ["a"]]
    assert _run(_rule(for_ms=0, no_data_state="KeepLast"), [_normal("a"), NO]) == [[], []]
    assert _run(_rule(for_ms=0, no_data_state="OK"), [_alerting("a"), NO]) == [["a"], []]


def test_no_data_state_nodata__is_its_own_instance_and_the_alert_resolves_as_missing() -> None:
    state = RuleState(_rule(for_ms=0))
    for tick, outcome in enumerate([_alerting("a"), NO, NO, NO]):
        state.advance(tick * MIN, outcome)
    assert state.firing() == []
    assert state.others() == [("NoData", {"severity": "critical"})]


def test_error__execerrstate_error_or_alerting() -> None:
    assert _run(_rule(for_ms=0), [_alerting("a"), None, None, None]) == [["a"], ["a"], [], []]
    assert _run(_rule(for_ms=0, exec_err_state="Alerting"), [_alerting("a"), None, None]) == [
        ["a"],
        ["a"],
        ["a"],
    ]


def _sent(rule: Rule, outcomes: Sequence[ConditionOutcome | None]) -> list[tuple[dict[str, str], str]]:
    state = RuleState(rule)
    for tick, outcome in enumerate(outcomes):
        state.advance(tick * rule.interval_ms, outcome)
    return [(dict(sent.labels), sent.reason) for sent in state.sent()]


def test_sent__error_and_nodata_instances_are_renamed_and_keep_the_rule_in_rulename() -> None:
    renamed = {"rulename": "T", "severity": "critical"}
    assert _sent(_rule(for_ms=0), [None]) == [({"alertname": "DatasourceError", **renamed}, "Error")]
    assert _sent(_rule(for_ms=0), [NO]) == [({"alertname": "DatasourceNoData", **renamed}, "")]


def test_sent__alerting_from_an_error_or_no_data_keeps_the_name_and_says_why() -> None:
    rule = _rule(for_ms=0, exec_err_state="Alerting", no_data_state="Alerting")
    own = {"alertname": "T", "severity": "critical"}
    assert _sent(rule, [None]) == [(own, "Error")]
    assert _sent(rule, [NO]) == [(own, "NoData")]
    assert _sent(rule, [_alerting("a")]) == [({**own, "host": "a"}, "")]
    keep_last = _rule(for_ms=0, no_data_state="KeepLast")
    assert _sent(keep_last, [_alerting("a"), NO]) == [({**own, "host": "a"}, "")]
    assert _sent(dataclasses.replace(keep_last, for_ms=MIN), [_alerting("a"), NO]) == [
        ({**own, "host": "a"}, "NoData, KeepLast")
    ]


def test_condition__nan_alerts_null_is_no_data() -> None:
    rule = _rule(expressions=(Expression("C", "math", {"expression": "$A * 1"}),))
    outcome = evaluate_condition(rule, {"A": [Number({"h": "x"}, math.nan), Number({"h": "y"}, 0.0)]}, set())
    assert outcome.results == (({"h": "x"}, "Alerting"), ({"h": "y"}, "Normal"))
    assert evaluate_condition(rule, {"A": [NO_DATA]}, set()).no_data
    assert evaluate_condition(_rule(), {"A": []}, set()).no_data


def test_condition__series_without_reduce_is_an_error() -> None:
    with pytest.raises(EvaluationError, match="time series"):
        evaluate_condition(_rule(), {"A": [SeriesValue({}, ((0, 2.0),))]}, set())


@pytest.mark.parametrize(
    ("reducer", "mode", "expected"),
    [
        ("last", "", 3.0),
        ("mean", "", math.nan),
        ("mean", "dropNN", 2.0),
        ("max", "replaceNN", 3.0),
        ("count", "", 3.0),
        ("sum", "dropNN", 4.0),
    ],
)
def test_reduce__modes(reducer: str, mode: str, expected: float) -> None:
    settings: dict[str, Any] = {"mode": mode, "replaceWithValue": -1}
    reduce = Expression("B", "reduce", {"expression": "A", "reducer": reducer, "settings": settings})
    check = "is_nan($B)" if math.isnan(expected) else f"$B == {expected}"
    rule = _rule(expressions=(reduce, Expression("C", "math", {"expression": check})))
    series: list[Value] = [SeriesValue({"h": "x"}, ((0, 1.0), (1, math.nan), (2, 3.0)))]
    assert evaluate_condition(rule, {"A": series}, set()).results == (({"h": "x"}, "Alerting"),)


def test_threshold_ranges_and_recovery_threshold() -> None:
    def fires(evaluator: dict[str, Any], value: float, loaded: bool = False, unload: Any = None) -> bool:
        condition: dict[str, Any] = {"evaluator": evaluator}
        if unload:
            condition["unloadEvaluator"] = unload
        rule = _rule(
            expressions=(Expression("C", "threshold", {"expression": "A", "conditions": [condition]}),)
        )
        fp = {frozenset({"h": "x"}.items())} if loaded else set()
        (result,) = evaluate_condition(rule, {"A": [Number({"h": "x"}, value)]}, fp).results
        return result[1] == "Alerting"

    assert fires({"type": "within_range", "params": [1, 3]}, 2) and not fires(
        {"type": "within_range", "params": [1, 3]}, 3
    )
    assert fires({"type": "outside_range", "params": [1, 3]}, 4) and not fires(
        {"type": "outside_range", "params": [1, 3]}, 1
    )
    gt10, below5 = {"type": "gt", "params": [10]}, {"type": "lt", "params": [5]}
    assert not fires(gt10, 7, loaded=False, unload=below5)
    assert fires(gt10, 7, loaded=True, unload=below5), (
        "a firing instance recovers only below the unload threshold"
    )


def test_math__union_by_label_subset_and_scalars() -> None:
    expression = parse_math("$A / $B * 100 > 80")
    values = expression.evaluate(
        {
            "A": [
                Number({"exporter": "loki", "type": "logs"}, 9.0),
                Number({"exporter": "tempo", "type": "t"}, 1.0),
            ],
            "B": [Number({"exporter": "loki"}, 10.0), Number({"exporter": "tempo"}, 10.0)],
        }
    )
    assert values == [
        Number({"exporter": "loki", "type": "logs"}, 1.0),
        Number({"exporter": "tempo", "type": "t"}, 0.0),
    ]
    assert parse_math("1 + 2 * 3 ** 2").evaluate({}) == [Scalar(19.0)]
    assert parse_math("!($A > 1) || is_nan($A)").evaluate({"A": [Number({}, math.nan)]}) == [Number({}, 1.0)]
