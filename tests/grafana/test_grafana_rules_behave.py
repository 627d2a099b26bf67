"""The rules Grafana actually loads behave as the scenarios say: a second reading beside promtool's.

promtool proves the Prometheus mirror; these tests read ``grafana/provisioning/alerting`` the way
Grafana does (queries, expressions, condition, ``for``, ``keepFiringFor``, no-data and error states)
and replay the same scenario files on a real Prometheus. A rule whose Grafana form drifts from its
mirror (an inverted comparison, another ``for``) fails here even when promtool stays green.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import cast

import pytest

from testkit.grafana_replay import Mismatch, instant_values, instant_values_one_by_one, replay_case
from testkit.grafana_rules import Rule, load_rules
from testkit.prometheus import running_prometheus
from testkit.remote_write import push
from testkit.rule_scenarios import Case, load_cases
from tests.grafana._paths import GRAFANA_DIR, SCENARIOS

PROVISIONING = GRAFANA_DIR / "provisioning"
CASES = [case for path in sorted(SCENARIOS.glob("*.yaml")) for case in load_cases(path) if case.checks]


@pytest.fixture(scope="module")
def rules() -> list[Rule]:
    return load_rules(PROVISIONING)


def _case(file_stem: str, name_start: str) -> Case:
    return next(c for c in CASES if c.file.stem == file_stem and c.name.startswith(name_start))


@pytest.fixture(scope="module")
def replays(
    request: pytest.FixtureRequest, rules: list[Rule], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[list[Mismatch]]]]:
    """The selected cases replayed a few at a time: each mostly waits on its own Prometheus."""
    selected = [
        cast(Case, item.callspec.params["case"])
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_grafana_reading__fires_as_the_scenario_expects"
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield {
            case.ident: pool.submit(replay_case, tmp_path_factory.mktemp("replay"), case, rules)
            for case in selected
        }


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.ident)
def test_grafana_reading__fires_as_the_scenario_expects(
    case: Case, replays: dict[str, Future[list[Mismatch]]]
) -> None:
    mismatches = replays[case.ident].result(timeout=300)
    assert not mismatches, "\n".join(map(str, mismatches))


def test_every_provisioned_rule__has_a_scenario_firing_and_one_quiet(rules: list[Rule]) -> None:
    firing = {c.alertname for case in CASES for c in case.checks if c.expected}
    quiet = {c.alertname for case in CASES for c in case.checks if not c.expected}
    titles = {rule.title for rule in rules}
    always = {rule.title for rule in rules if rule.labels.get("severity") == "none"}  # dead man's switch
    assert titles, "no rules provisioned"
    assert not titles - firing, (
        f"provisioned rules never shown firing in tests/grafana/scenarios: {sorted(titles - firing)}; "
        "a new rule needs a scenario where it fires"
    )
    assert not always & quiet, f"a dead man's switch shown quiet: {sorted(always & quiet)}"
    assert not titles - always - quiet, (
        f"provisioned rules never shown quiet in tests/grafana/scenarios: {sorted(titles - always - quiet)}; "
        "a new rule needs a scenario where it stays quiet"
    )


def _inverted(rule: Rule) -> Rule:
    flip = {"gt": "lt", "lt": "gt"}
    expressions = []
    for expression in rule.expressions:
        model = dict(expression.model)
        if expression.type == "threshold":
            condition = dict(model["conditions"][0])
            evaluator = dict(condition["evaluator"])
            evaluator["type"] = flip[evaluator["type"]]
            model["conditions"] = [{**condition, "evaluator": evaluator}]
        expressions.append(dataclasses.replace(expression, model=model))
    return dataclasses.replace(rule, expressions=tuple(expressions))


def test_replay__catches_an_inverted_heartbeat_rule(rules: list[Rule], tmp_path: Path) -> None:
    """The reader is not a rubber stamp: the same scenario fails once the comparison flips."""
    case = _case("heartbeat", "dead importer fires")
    broken = [_inverted(r) if r.title == "MnemoHeartbeatStale" else r for r in rules]
    mismatches = replay_case(tmp_path, case, broken)
    assert {m.alertname for m in mismatches} == {"MnemoHeartbeatStale"}
    assert any(m.expected and not m.got for m in mismatches), mismatches


def test_replay__catches_a_longer_pending_period(rules: list[Rule], tmp_path: Path) -> None:
    case = _case("database", "database down fires")
    slow = [
        dataclasses.replace(r, for_ms=r.for_ms + 30 * 60_000) if r.title == "MnemoDatabaseDown" else r
        for r in rules
    ]
    assert replay_case(tmp_path, case, slow)


def test_range_query_steps__equal_instant_queries_at_each_tick(rules: list[Rule], tmp_path: Path) -> None:
    """One query_range per rule stands for Grafana's instant query per tick: prove they agree."""
    case = _case("heartbeat", "restart under a new instance label")
    (rule,) = [r for r in rules if r.title == "MnemoHeartbeatStale"]
    ticks = list(range(0, 4 * 3600_000, rule.interval_ms))
    sample = ticks[::37]
    with running_prometheus(tmp_path, load_rules=False) as prom:
        push(prom.remote_write_url, [(s.labels, s.samples) for s in case.series])
        by_range = instant_values(prom, rule.queries[0], ticks)
        one_by_one = instant_values_one_by_one(prom, rule.queries[0], sample)
    assert {t: by_range[t] for t in sample} == one_by_one
    assert len({str(v) for v in one_by_one.values()}) > 3, "the sample should see changing values"
