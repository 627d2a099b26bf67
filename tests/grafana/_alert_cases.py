"""What Grafana hands the template engines for each provisioned rule, in each state it can be in.

Read from the committed provisioning (what Grafana reads), never from the Python spec. The shapes follow
Grafana's alert state manager: annotations are expanded with the rule's labels, the series' labels and
``$values`` (empty on an evaluation error or NoData). Which alert a failing or empty evaluation sends,
under which name and with which state reason, is the replay's answer (``testkit.grafana_state``:
``DatasourceError``/``DatasourceNoData`` with the title in ``rulename``, or the rule's own name when it
says ``Alerting``); added here are what the replay does not model: the ``grafana_folder`` label, the
``datasource_uid``/``ref_id`` labels of a query error, and the error text (the annotation ``Error``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from testkit.grafana_rules import Rule, load_rules
from testkit.grafana_sse import ConditionOutcome
from testkit.grafana_state import RuleState, Sent
from tests.grafana._paths import GRAFANA_DIR
from tests.grafana._promql import load

ALERTING = GRAFANA_DIR / "provisioning" / "alerting"
EXTERNAL_URL = "http://grafana.example:3000/"
STARTS_AT = "2026-12-04T21:00:00Z"
RESOLVED_AT = "2026-12-04T21:30:00Z"
NOT_ENDED = "0001-01-01T00:00:00Z"
EVALUATED_AT_MS = 1_796_418_000_000
ERROR_TEXT = (
    "[sse.dataQueryError] failed to execute query [A]: dial tcp 172.18.0.4:9090: connect: connection refused"
)
SERIES = {
    "service_instance_id": "host-a",
    "error_type": "io",
    "mnemo_volume": "data",
    "exporter": "otlp/tempo",
    "signal": "traces",
    "burn_windows": "1h/5m",
    "mnemo_witness_host": "laptop-c",
    "mnemo_archiver": "none",
}
"""Every label a rule's query may keep (extra ones are harmless to a template)."""


@dataclass(frozen=True, slots=True)
class StateCase:
    """One rule in one state: what its annotation templates see, and what the notifier gets."""

    kind: str
    rule: Mapping[str, Any]
    status: str
    template_labels: Mapping[str, str]
    values: Mapping[str, tuple[Mapping[str, str], float | None]]
    notification_labels: Mapping[str, str]
    extra_annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.rule['title']}-{self.kind}"

    @property
    def title(self) -> str:
        return str(self.rule["title"])

    @property
    def severity(self) -> str:
        return str(self.rule["labels"]["severity"])


def rules() -> list[dict[str, Any]]:
    return [rule for group in load(ALERTING / "rules.yaml")["groups"] for rule in group["rules"]]


def folder() -> str:
    (group,) = load(ALERTING / "rules.yaml")["groups"]
    return str(group["folder"])


def _threshold(rule: Mapping[str, Any]) -> tuple[str, float]:
    (condition,) = rule["data"][1]["model"]["conditions"]
    return condition["evaluator"]["type"], float(condition["evaluator"]["params"][0])


def _values(firing: float) -> dict[str, tuple[Mapping[str, str], float | None]]:
    return {"A": (SERIES, firing), "C": (SERIES, 1.0)}


@functools.cache
def _replay_rules() -> dict[str, Rule]:
    return {rule.uid: rule for rule in load_rules(GRAFANA_DIR / "provisioning")}


def _sent(uid: str, kind: str, mode: str | None = None) -> Sent:
    """What Grafana sends for a rule whose every evaluation fails (``Error``) or is empty (``NoData``),
    once its ``for`` has passed; ``mode`` overrides the rule's execErrState/noDataState."""
    rule = _replay_rules()[uid]
    if mode is not None and kind == "Error":
        rule = dataclasses.replace(rule, exec_err_state=mode)
    elif mode is not None:
        rule = dataclasses.replace(rule, no_data_state=mode)
    state = RuleState(rule)
    outcome = None if kind == "Error" else ConditionOutcome(no_data=True)
    for tick in range(rule.for_ms // rule.interval_ms + 2):
        state.advance(tick * rule.interval_ms, outcome)
    (sent,) = state.sent()
    return sent


def _failing(
    rule: Mapping[str, Any], kind: str, mode: str | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Notification labels and the annotations Grafana adds, for a failing or empty evaluation."""
    sent = _sent(rule["uid"], kind, mode)
    labels = {**sent.labels, "grafana_folder": folder()}
    annotations = {"grafana_state_reason": sent.reason} if sent.reason else {}
    if kind == "Error":
        annotations["Error"] = ERROR_TEXT
        if "rulename" in labels:  # a query error names its query in the labels of its own alert
            labels.update(datasource_uid="prometheus", ref_id="A")
    return labels, annotations


def cases(rule: Mapping[str, Any]) -> Iterator[StateCase]:
    """Firing with values (with and without series labels), Error, NoData and resolved; and firing
    from an error or from no data when the rule says ``Alerting`` for them (the alert keeps its name,
    its values are empty)."""
    op, threshold = _threshold(rule)
    firing = max(threshold * 2, threshold + 1) if op == "gt" else threshold - 1
    quiet = threshold / 2 if op == "gt" else threshold
    own = {"alertname": rule["title"], "grafana_folder": folder(), **rule["labels"]}
    yield StateCase("firing", rule, "firing", {**own, **SERIES}, _values(firing), {**own, **SERIES})
    # A series without labels of its own (the heartbeat's "no heartbeat at all" has no host).
    bare: dict[str, tuple[Mapping[str, str], float | None]] = {"A": ({}, firing), "C": ({}, 1.0)}
    yield StateCase("firing-unlabelled", rule, "firing", own, bare, own)
    # Every rule as if in Error / NoData state, whatever it says (most rules say Error).
    yield StateCase("error", rule, "firing", own, {}, *_failing(rule, "Error", "Error"))
    yield StateCase("nodata", rule, "firing", own, {}, *_failing(rule, "NoData", "NoData"))
    yield StateCase("resolved", rule, "resolved", {**own, **SERIES}, _values(quiet), {**own, **SERIES})
    if rule["execErrState"] == "Alerting":
        yield StateCase("error-alerting", rule, "firing", own, {}, *_failing(rule, "Error"))
    if rule["noDataState"] == "Alerting":
        yield StateCase("nodata-alerting", rule, "firing", own, {}, *_failing(rule, "NoData"))


def all_cases() -> list[StateCase]:
    return [case for rule in rules() for case in cases(rule)]


def notification_data(case: StateCase, annotations: Mapping[str, str]) -> dict[str, Any]:
    """Alertmanager's ``template.Data`` for a group holding this one alert."""
    labels = dict(case.notification_labels)
    alert = {
        "status": case.status,
        "labels": labels,
        "annotations": {**annotations, **case.extra_annotations},
        "startsAt": STARTS_AT,
        "endsAt": RESOLVED_AT if case.status == "resolved" else NOT_ENDED,
        "generatorURL": f"{EXTERNAL_URL}alerting/grafana/{case.rule['uid']}/view",
        "fingerprint": "0123456789abcdef",
    }
    group = {key: labels[key] for key in ("alertname", "service_instance_id") if key in labels}
    return {
        "receiver": "mnemo-webhook",
        "status": case.status,
        "alerts": [alert],
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": alert["annotations"],
        "externalURL": EXTERNAL_URL,
    }
