"""Every rule's notification, in every state, read as a person gets it, from the real template engines.

Each rule's annotations are expanded by Go's text/template with the Prometheus template functions (as
Grafana expands them), then the provisioned message templates render the notification in Alertmanager's
own engine (``amtool``). Grafana's notification data has fields Alertmanager's has not; only the
``mnemo.links`` template reads them, and here a stand-in replaces it (its syntax is still parsed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest

from testkit.alert_text import AnnotationCase, Expansion, expand_annotations, render_notification
from tests.grafana._alert_cases import (
    ALERTING,
    ERROR_TEXT,
    EVALUATED_AT_MS,
    EXTERNAL_URL,
    StateCase,
    all_cases,
    notification_data,
)
from tests.grafana._promql import load

CASES = all_cases()
LINKS_MARK = "[panel and silence links]"
LINKS_STAND_IN = '{{ define "mnemo.links" }}' + LINKS_MARK + "\n{{ end }}"
TEXT = '{{ template "mnemo.title" . }}\n{{ template "mnemo.message" . }}'
LEFTOVERS = ("{{", "}}", "%!", "<no value>", "[no value]")


def _templates() -> dict[str, str]:
    return {entry["name"]: entry["template"] for entry in load(ALERTING / "templates.yaml")["templates"]}


def _annotation_case(case: StateCase, annotations: Mapping[str, str] | None = None) -> AnnotationCase:
    return AnnotationCase(
        id=case.id,
        annotations=annotations if annotations is not None else case.rule["annotations"],
        labels=case.template_labels,
        values=case.values,
    )


@pytest.fixture(scope="module")
def expanded() -> dict[str, dict[str, Expansion]]:
    cases = [_annotation_case(case) for case in CASES]
    return expand_annotations(cases, external_url=EXTERNAL_URL, evaluated_at_ms=EVALUATED_AT_MS)


def _render(case: StateCase, annotations: Mapping[str, str], templates: Mapping[str, str]) -> str:
    """Title and message; the real links template is parsed, then replaced by the stand-in."""
    parsed = [templates["mnemo"], templates["mnemo-links"], LINKS_STAND_IN]
    return render_notification(parsed, notification_data(case, annotations), TEXT)


def _problems(case: StateCase, expansions: Mapping[str, Expansion], text: str) -> list[str]:
    """Everything a person reading this notification would be misled by (empty: it reads well)."""
    problems = [f"{name}: {e.error}" for name, e in expansions.items() if e.error]
    problems += [f"left over {bit!r}" for bit in LEFTOVERS if bit in text]
    title, _, message = text.partition("\n")
    if case.title not in title or f"{case.title} ({case.severity})" not in message:
        problems.append("the rule's name and severity are not both shown")
    summary = expansions["summary"].text
    reads_value = "$values" in case.rule["annotations"]["summary"]
    if reads_value and not case.values and "is unknown" not in summary:
        problems.append(f"no value, yet the summary does not say it is unknown: {summary!r}")
    if case.values and "unknown" in summary:
        problems.append(f"a value, yet the summary says unknown: {summary!r}")
    reason = case.extra_annotations.get("grafana_state_reason")
    if reason and f"(state reason: {reason})" not in message:
        problems.append("the state reason is not shown")
    if "Error" in case.extra_annotations and f"Error: {ERROR_TEXT}" not in message:
        problems.append("the evaluation error is not shown")
    runbook = EXTERNAL_URL.rstrip("/") + case.rule["annotations"]["runbook_url"]
    if f"Runbook page: {runbook}\n" not in message:
        problems.append("no absolute runbook link")
    if message.count(LINKS_MARK) != 1:
        problems.append("the Grafana links are not given once")
    return problems


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_notification__names_the_rule_and_says_what_broke(
    case: StateCase, expanded: dict[str, dict[str, Expansion]]
) -> None:
    expansions = expanded[case.id]
    text = _render(case, {name: e.text for name, e in expansions.items()}, _templates())
    assert _problems(case, expansions, text) == [], text


def test_every_rule__is_covered_in_the_four_states() -> None:
    kinds: dict[str, set[str]] = {}
    for case in CASES:
        kinds.setdefault(case.title, set()).add(case.kind)
    assert all({"firing", "error", "nodata", "resolved"} <= seen for seen in kinds.values())
    assert "error-alerting" in kinds["MnemoHeartbeatStale"]


def _case(title: str, kind: str) -> StateCase:
    return next(case for case in CASES if case.title == title and case.kind == kind)


def _unguarded(summary: str) -> str:
    """The summary with its ``{{ with $values.A }}`` dropped: the value read directly, as before."""
    depth, known_end = 0, None
    for token in re.finditer(r"{{ (with|if|range|else|end)\b[^}]*}}", summary):
        word = token.group(1)
        if word in ("with", "if", "range"):
            depth += 1
        elif word == "end":
            depth -= 1
        elif depth == 1 and known_end is None:
            known_end = token.start()
    assert summary.startswith("{{ with $values.A }}") and known_end is not None
    known = summary[len("{{ with $values.A }}") : known_end]
    return known.replace(" .Value", " $values.A.Value")


@pytest.mark.parametrize("title", ["MnemoHeartbeatStale", "MnemoImportGap", "MnemoDiskNearlyFull"])
def test_mutation__a_summary_without_its_with_is_caught(title: str) -> None:
    case = _case(title, "error")
    annotations: dict[str, Any] = dict(case.rule["annotations"])
    annotations["summary"] = _unguarded(annotations["summary"])
    (expansions,) = expand_annotations(
        [_annotation_case(case, annotations)], external_url=EXTERNAL_URL, evaluated_at_ms=EVALUATED_AT_MS
    ).values()
    text = _render(case, {name: e.text for name, e in expansions.items()}, _templates())
    problems = _problems(case, expansions, text)
    assert any(problem.startswith("summary:") for problem in problems), problems
    assert "left over '{{'" in problems


def test_mutation__the_state_reason_read_from_labels_is_caught(
    expanded: dict[str, dict[str, Expansion]],
) -> None:
    case = _case("MnemoImportGap", "error")
    templates = _templates()
    assert ".Annotations.grafana_state_reason" in templates["mnemo"]
    templates["mnemo"] = templates["mnemo"].replace(
        ".Annotations.grafana_state_reason", ".Labels.grafana_state_reason"
    )
    expansions = expanded[case.id]
    text = _render(case, {name: e.text for name, e in expansions.items()}, templates)
    assert _problems(case, expansions, text) == ["the state reason is not shown"]


def test_mutation__the_title_from_alertname_alone_is_caught(
    expanded: dict[str, dict[str, Expansion]],
) -> None:
    case = _case("MnemoDatabaseDown", "nodata")
    templates = _templates()
    templates["mnemo"] = templates["mnemo"].replace(
        "or .CommonLabels.rulename .CommonLabels.alertname", ".CommonLabels.alertname"
    )
    templates["mnemo"] = templates["mnemo"].replace(
        "{{ or .Labels.rulename .Labels.alertname }}", "{{ .Labels.alertname }}"
    )
    expansions = expanded[case.id]
    text = _render(case, {name: e.text for name, e in expansions.items()}, templates)
    assert _problems(case, expansions, text) == ["the rule's name and severity are not both shown"]


def test_runbook_link__an_absolute_one_is_given_as_it_is(expanded: dict[str, dict[str, Expansion]]) -> None:
    case = _case("MnemoSourceLost", "firing")
    published = "https://forge.example/mnemo-otel/blob/main/docs/runbook.md#mnemosourcelost"
    annotations = {**{name: e.text for name, e in expanded[case.id].items()}, "runbook_url": published}
    assert f"Runbook page: {published}\n" in _render(case, annotations, _templates())
