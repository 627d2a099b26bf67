"""The seed's KPIs as service-level objectives: recorded SLIs, burn-rate alerts, the dead man's switch.

Prometheus records the SLIs (:func:`recording_rules`; compose's Prometheus and the tests load the
rendered file), so each burn-rate alert stays one instant query over recorded error ratios, cheap at
any window. Error ratios carry ``slo`` and ``window`` labels: the two windows of a burn pair are one
selector, and ``min`` over it is "both windows burn".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from mnemo_otel.grafana.spec import (
    ATTR_FLEET_HOST,
    HEARTBEAT_STALE_AFTER_S,
    UNKNOWN,
    AlertSpec,
    PanelId,
    Severity,
    measured,
    number,
)
from mnemo_otel.telemetry import names

__all__ = (
    "AVAILABILITY",
    "BURN_PAIRS",
    "IMPORT_SUCCESS",
    "RECOVERY_TARGET_S",
    "RULES",
    "SLO_PERIOD",
    "WINDOWS",
    "BurnPair",
    "Objective",
    "Recorded",
    "recording_rules",
)

SLO_PERIOD: Final = "30d"
RECOVERY_TARGET_S: Final = 120
"""Time to recovery: the heartbeat's longest silence per outage, from last beat to next beat."""
HOST_MEMORY: Final = "1d"
HOST_MEMORY_S: Final = 86400
"""How long a silent host that is not a fleet member still counts (as down) before it drops out."""
MEMORY_INTERVAL: Final = "5m"
"""Cadence of the hosts' memory: a day of it is 288 samples, where a day of raw beats is 5760."""


@dataclass(frozen=True, slots=True)
class Objective:
    """One SLO: ``key`` is the ``slo`` label of its recorded error ratios."""

    key: str
    target: float
    title: str

    @property
    def budget(self) -> float:
        """The allowed error ratio (1 - target), rounded so it prints as written."""
        return round(1 - self.target, 9)


@dataclass(frozen=True, slots=True)
class BurnPair:
    """Fire when both windows burn the budget over ``factor`` times faster than the period allows."""

    long: str
    short: str
    factor: float


AVAILABILITY: Final = Objective("availability", 0.99, "Availability")
IMPORT_SUCCESS: Final = Objective("import_success", 0.95, "Import success")
BURN_PAIRS: Final = (BurnPair("1h", "5m", 14.4), BurnPair("6h", "30m", 6))
"""2 % of a 30-day budget in one hour, or 5 % in six hours (the SRE workbook's paging pairs)."""
WINDOWS: Final = ("5m", "30m", "1h", "6h")
"""Every window of :data:`BURN_PAIRS`, each recorded once per objective."""


class Recorded:
    """Names of the recorded series: ``level:metric:operation``."""

    LAST_BEAT: Final = "mnemo:heartbeat_last:timestamp"
    HEARTBEAT_AGE: Final = "mnemo:heartbeat_age:seconds"
    HEARTBEAT_FRESH: Final = "mnemo:heartbeat_fresh:bool"
    AVAILABILITY: Final = "mnemo:heartbeat_fresh:ratio"
    RECOVERY: Final = "mnemo:slo_recovery:seconds"
    ERRORS: Final = "mnemo:slo_errors:ratio"
    AVAILABILITY_30D: Final = "mnemo:availability:ratio_30d"
    HOST_AVAILABILITY_30D: Final = "mnemo:host_availability:ratio_30d"
    IMPORT_SUCCESS_30D: Final = "mnemo:import_success:ratio_30d"
    LOST_30D: Final = "mnemo:source_lost:bytes_30d"


_HOST = "service_instance_id"


def _import_errors(window: str) -> str:
    """Failed attempts / all attempts; 0 when nothing was attempted (an idle night spends nothing)."""
    failed = f"(sum(increase({names.IMPORT_FAILURES.prometheus}[{window}])) or on() vector(0))"
    succeeded = f"(sum(increase({names.IMPORT_DURATION.prometheus}_count[{window}])) or on() vector(0))"
    return f"{failed} / ({succeeded} + {failed} > 0) or on() vector(0)"


def _record(name: str, expr: str, **labels: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"record": name, "expr": expr}
    if labels:
        rule["labels"] = labels
    return rule


def _heartbeat_age() -> str:
    """Seconds since each host's last beat: the raw beats of the last 30 minutes, else the day-long
    memory of the slower group. The hosts judged are the fleet's members while any live importer
    exports them (a retired host leaves at once; a member silent for over a day counts as a day
    old), else every host seen within the day."""
    fleet = ATTR_FLEET_HOST
    seen = (
        f"(time() - max by ({_HOST}) (last_over_time({names.HEARTBEAT.prometheus}[30m])"
        f" or last_over_time({Recorded.LAST_BEAT}[{HOST_MEMORY}])))"
    )
    members = (
        f"max by ({_HOST}) (label_join(max by ({fleet}) ({names.FLEET_MEMBER.prometheus}), "
        f'"{_HOST}", "", "{fleet}"))'
    )
    return (
        f"({seen} and on ({_HOST}) {members})"
        f" or on ({_HOST}) ({members} * 0 + {HOST_MEMORY_S})"
        f" or ({seen} unless on () {members})"
    )


def _sli_rules() -> list[dict[str, Any]]:
    """Evaluated in order each round: later rules read the earlier ones' fresh values."""
    age, fresh = Recorded.HEARTBEAT_AGE, Recorded.HEARTBEAT_FRESH
    stale = number(HEARTBEAT_STALE_AFTER_S)
    rules = [
        _record(age, _heartbeat_age()),
        _record(fresh, f"{age} <= bool {stale}"),
        # No host at all is down, not "no data".
        _record(Recorded.AVAILABILITY, f"avg({fresh}) or on() vector(0)"),
        # Right after an outage ends: its length, the age the heartbeat reached before the next beat.
        _record(
            Recorded.RECOVERY, f"(max_over_time({age}[1m]) > {stale}) and on ({_HOST}) ({age} <= {stale})"
        ),
    ]
    for window in WINDOWS:
        expr = f"1 - avg_over_time({Recorded.AVAILABILITY}[{window}])"
        rules.append(_record(Recorded.ERRORS, expr, slo=AVAILABILITY.key, window=window))
    for window in WINDOWS:
        rules.append(_record(Recorded.ERRORS, _import_errors(window), slo=IMPORT_SUCCESS.key, window=window))
    return rules


def _memory_rules() -> list[dict[str, Any]]:
    """Each host's last beat, kept sparse so that remembering a silent host for a day stays cheap."""
    beats = f"max by ({_HOST}) (last_over_time({names.HEARTBEAT.prometheus}[30m]))"
    return [_record(Recorded.LAST_BEAT, beats)]


def _period_rules() -> list[dict[str, Any]]:
    period = SLO_PERIOD
    return [
        _record(Recorded.AVAILABILITY_30D, f"avg_over_time({Recorded.AVAILABILITY}[{period}])"),
        _record(Recorded.HOST_AVAILABILITY_30D, f"avg_over_time({Recorded.HEARTBEAT_FRESH}[{period}])"),
        _record(Recorded.IMPORT_SUCCESS_30D, f"1 - ({_import_errors(period)})"),
        _record(Recorded.LOST_30D, f"sum(increase({names.SOURCE_LOST.prometheus}[{period}]))"),
    ]


def recording_rules() -> dict[str, Any]:
    """The Prometheus rule file of the SLIs, evaluated at Prometheus's global interval (the memory
    group at its own); each group reads only the groups above it, so evaluating them in order (as a
    backfill does) gives what Prometheus records."""
    return {
        "groups": [
            {"name": "mnemo-sli-memory", "interval": MEMORY_INTERVAL, "rules": _memory_rules()},
            {"name": "mnemo-sli", "rules": _sli_rules()},
            {"name": "mnemo-slo-30d", "rules": _period_rules()},
        ]
    }


def burn_query(objective: Objective) -> str:
    """The highest burn of the two pairs, as a multiple of that pair's paging factor (> 1 pages).

    Each pair's burn is the smaller of its two windows' (both must burn); the ``burn_windows`` label
    only keeps the pairs apart for ``or``.
    """
    pairs = []
    for pair in BURN_PAIRS:
        selector = f'{Recorded.ERRORS}{{slo="{objective.key}",window=~"{pair.long}|{pair.short}"}}'
        burn = f"min({selector}) / {number(objective.budget)} / {number(pair.factor)}"
        pairs.append(f'label_replace({burn}, "burn_windows", "{pair.long}/{pair.short}", "", "")')
    return f"max({' or '.join(pairs)})"


def _burn_summary(objective: Objective) -> str:
    target = f"(target {number(objective.target * 100)} %)"
    return measured(
        f"{objective.title} is spending its {SLO_PERIOD} error budget "
        f'{{{{ printf "%.1f" .Value }}}} times the paging rate {target}.',
        f"How fast {objective.title} spends its {SLO_PERIOD} error budget {target} {UNKNOWN}",
    )


def _burn_description(objective: Objective, what: str) -> str:
    fast, slow = BURN_PAIRS
    return (
        f"{what} Multi-window burn rate over a {SLO_PERIOD} budget of {number(objective.budget * 100)} %: "
        f"fires when the last {fast.long} and the last {fast.short} both burn over "
        f"{number(fast.factor)}x, or the last {slow.long} and {slow.short} over {number(slow.factor)}x. "
        "The short window ends it within minutes of recovery."
    )


_AVAILABILITY_BURN = AlertSpec(
    name="MnemoAvailabilityBudgetBurn",
    uid="mnemo-availability-budget-burn",
    query=burn_query(AVAILABILITY),
    op="gt",
    threshold=1,
    pending="1m",
    keep_firing_for="0s",
    no_data="NoData",
    exec_err="Error",
    severity=Severity.CRITICAL,
    panel=PanelId.AVAILABILITY,
    summary=_burn_summary(AVAILABILITY),
    description=_burn_description(
        AVAILABILITY,
        f"Availability is the share of time the heartbeat is at most {HEARTBEAT_STALE_AFTER_S} s old.",
    ),
    runbook="Find the outages on the heartbeat-age and recovery panels; see MnemoHeartbeatStale.",
)

_IMPORT_BURN = AlertSpec(
    name="MnemoImportSuccessBudgetBurn",
    uid="mnemo-import-success-budget-burn",
    query=burn_query(IMPORT_SUCCESS),
    op="gt",
    threshold=1,
    pending="1m",
    keep_firing_for="0s",
    no_data="NoData",
    exec_err="Error",
    severity=Severity.WARNING,
    panel=PanelId.IMPORT_SUCCESS,
    summary=_burn_summary(IMPORT_SUCCESS),
    description=_burn_description(
        IMPORT_SUCCESS, "Import success is committed imports / (committed + failed attempts)."
    ),
    runbook="Look at import failures by type; see MnemoImportFailing and MnemoDatabaseDown.",
)

WATCHDOG: Final = AlertSpec(
    name="MnemoWatchdog",
    uid="mnemo-watchdog",
    query="vector(1)",
    op="gt",
    threshold=0,
    pending="0s",
    keep_firing_for="0s",
    # A Prometheus that cannot answer ends the switch's pings: exactly what the pinger must notice.
    no_data="OK",
    exec_err="OK",
    severity=Severity.NONE,
    panel=None,
    summary="The alerting pipeline works: this alert always fires.",
    description=(
        "A dead man's switch: its notifications reach an external check every few minutes, and that "
        "check raises the alarm when they stop, so a dead Grafana, Prometheus or notification path is "
        "noticed. It never goes to people."
    ),
    runbook="Never silence it. If the external check says it stopped: is Grafana up, can it query Prometheus?",
)

RULES: Final[tuple[AlertSpec, ...]] = (_AVAILABILITY_BURN, _IMPORT_BURN, WATCHDOG)
