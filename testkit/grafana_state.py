"""Grafana's alert-instance state machine (``pkg/services/ngalert/state``: ``state.go``, ``manager.go``).

One instance per label set (rule labels over result labels). Normal -> Pending -> Alerting once
``for`` has elapsed since Pending began (directly Alerting when ``for`` is 0); a Normal result on an
Alerting instance with ``keepFiringFor`` goes to Recovering, which still fires until
``keepFiringFor`` has elapsed. NoData and Error results follow ``noDataState``/``execErrState``
(``Alerting``, ``OK``, ``KeepLast`` apply to every existing instance; ``NoData``/``Error`` make
their own instance). An instance missing from a result is resolved once it has been missing for
``missing_series_evals_to_resolve`` intervals (one for NoData/Error instances).

What is sent to the notifier (:meth:`RuleState.sent`): firing instances under the rule's title as
``alertname``; NoData and Error instances renamed ``DatasourceNoData``/``DatasourceError`` with the
title in ``rulename``; each with its state reason (``Error``, ``NoData``, ``NoData, KeepLast``, ...),
which Grafana sends as the annotation ``grafana_state_reason``. Annotations themselves (expanded
templates, the ``Error`` text) are not modelled here: ``tests/grafana/test_alert_text.py`` runs them
through the real template engines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from testkit.grafana_rules import Rule
from testkit.grafana_sse import ConditionOutcome, Fingerprint, fingerprint
from testkit.grafana_values import Labels

__all__ = ("FIRING", "RENAMED", "Instance", "RuleState", "Sent")

FIRING = frozenset(("Alerting", "Recovering"))
"""States Grafana sends to the Alertmanager as firing alerts of the rule itself."""
RENAMED = {"NoData": "DatasourceNoData", "Error": "DatasourceError"}
"""States Grafana sends as firing alerts under another ``alertname`` (the rule's title in ``rulename``)."""


@dataclass(slots=True)
class Instance:
    labels: Labels
    result_labels: Labels
    state: str = "Normal"
    starts_at: int = 0
    last_eval: int = 0
    reason: str = ""
    """Why the instance entered its state (Grafana's ``StateReason``), set on each transition."""


@dataclass(frozen=True, slots=True)
class Sent:
    """One alert as Grafana hands it to the notifier: its labels and its ``grafana_state_reason``."""

    labels: Labels
    reason: str


def _enter(i: Instance, state: str, now: int, reason: str) -> None:
    i.state, i.starts_at, i.reason = state, now, reason


def _normal(i: Instance, rule: Rule, now: int, reason: str = "") -> None:
    if i.state == "Normal":
        return
    if i.state == "Recovering":
        if now - i.starts_at >= rule.keep_firing_for_ms:
            _enter(i, "Normal", now, reason)
        return
    if i.state == "Alerting" and rule.keep_firing_for_ms > 0:
        _enter(i, "Recovering", now, reason)
        return
    _enter(i, "Normal", now, reason)


def _alerting(i: Instance, rule: Rule, now: int, reason: str = "") -> None:
    if i.state == "Alerting":
        return
    if i.state == "Pending":
        if now - i.starts_at >= rule.for_ms:
            _enter(i, "Alerting", now, reason)
        return
    if i.state != "Recovering" and rule.for_ms > 0:
        _enter(i, "Pending", now, reason)
    else:
        _enter(i, "Alerting", now, reason)


def _keep_last(i: Instance, rule: Rule, now: int, reason: str) -> None:
    if i.state == "Alerting":
        _alerting(i, rule, now, reason)
    elif i.state == "Pending":
        if now - i.starts_at >= rule.for_ms:
            _alerting(i, rule, now, reason)
    else:
        _normal(i, rule, now, reason)


def _no_data_or_error(i: Instance, rule: Rule, now: int, kind: str) -> None:
    mode = rule.no_data_state if kind == "NoData" else rule.exec_err_state
    if mode == "Alerting":
        _alerting(i, rule, now, kind)
    elif mode == "OK":
        _normal(i, rule, now, "NoData" if kind == "NoData" else "")
    elif mode == "KeepLast":
        _keep_last(i, rule, now, f"{kind}, KeepLast")
    elif i.state != kind:  # "NoData" / "Error": an instance of its own state, not the rule's alert
        _enter(i, kind, now, "Error" if kind == "Error" else "")


def _transition(i: Instance, rule: Rule, now: int, result: str) -> None:
    i.last_eval = now
    if result == "Normal":
        _normal(i, rule, now)
    elif result == "Alerting":
        _alerting(i, rule, now)
    else:
        _no_data_or_error(i, rule, now, result)


@dataclass(slots=True)
class RuleState:
    """Every instance of one rule, advanced one evaluation at a time."""

    rule: Rule
    instances: dict[Fingerprint, Instance] = field(default_factory=dict)

    def loaded(self) -> set[Fingerprint]:
        """Result label sets currently firing: the recovery threshold applies to these."""
        return {fingerprint(i.result_labels) for i in self.instances.values() if i.state in FIRING}

    def firing(self) -> list[Labels]:
        return [i.labels for i in self.instances.values() if i.state in FIRING]

    def sent(self) -> list[Sent]:
        """The alerts Grafana sends as firing after this evaluation, as the notifier receives them."""
        out = []
        for i in self.instances.values():
            if i.state in FIRING:
                out.append(Sent({"alertname": self.rule.title, **i.labels}, i.reason))
            elif i.state in RENAMED:
                labels = {"alertname": RENAMED[i.state], "rulename": self.rule.title, **i.labels}
                out.append(Sent(labels, i.reason))
        return out

    def others(self) -> list[tuple[str, Labels]]:
        """Instances in a non-firing, non-normal state (Pending, NoData, Error), for diagnostics."""
        return [(i.state, i.labels) for i in self.instances.values() if i.state not in FIRING | {"Normal"}]

    def advance(self, now: int, outcome: ConditionOutcome | None) -> None:
        """Apply one evaluation: ``outcome`` None means the evaluation failed (Error)."""
        kind = "Error" if outcome is None else ("NoData" if outcome.no_data else "")
        mode = {"Error": self.rule.exec_err_state, "NoData": self.rule.no_data_state}.get(kind)
        if kind and mode in ("Alerting", "OK", "KeepLast") and self.instances:
            for instance in self.instances.values():
                _transition(instance, self.rule, now, kind)
        else:
            results = outcome.results if outcome is not None and not kind else (({}, kind),)
            for result_labels, result in results:
                labels = {**result_labels, **self.rule.labels}
                key = fingerprint(labels)
                instance = self.instances.setdefault(
                    key, Instance(labels, dict(result_labels), starts_at=now)
                )
                _transition(instance, self.rule, now, result)
        self._resolve_missing(now)

    def _resolve_missing(self, now: int) -> None:
        for key, instance in list(self.instances.items()):
            if instance.last_eval == now:
                continue
            evals = 1 if instance.state in ("NoData", "Error") else self.rule.missing_series_evals
            if now - instance.last_eval >= evals * self.rule.interval_ms:
                del self.instances[key]
