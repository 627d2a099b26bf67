"""The alert spec's vocabulary and the importer's own rules (``RULES``).

The telemetry pipeline's rules are in ``pipeline.py``, the SLO rules in ``slo.py``, the archive's in
``archive.py``, the second witness's in ``witness.py``.

Every Grafana rule and its Prometheus mirror are generated from ``mnemo_otel.grafana.rules.ALL_RULES``.

Each rule is an instant PromQL query (refId ``A``) whose value is compared with a threshold. The
query measures; it never compares, so dashboards, promtool tests and the end-to-end test can reuse
it. Annotations are Grafana templates (``$values``, ``$labels``): they stay unbraced because Grafana
expands ``${...}`` in provisioned annotations and ``$VAR`` in labels. A value or a series label is
read only inside ``{{ with }}`` (:func:`measured`): on an evaluation error or NoData both are absent,
and a template that fails is sent as its raw text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Final, Literal

from mnemo_otel.grafana.collector import COLLECTOR, CollectorMetrics
from mnemo_otel.telemetry import names

__all__ = (
    "COLLECTOR",
    "DASHBOARD_UID",
    "DATASOURCE_LOKI",
    "DATASOURCE_PROMETHEUS",
    "DATASOURCE_TEMPO",
    "EVALUATION_INTERVAL",
    "EVALUATION_INTERVAL_S",
    "EXPORT_INTERVAL_S",
    "GRAFANA_VERSION",
    "HEARTBEAT_FIRES_WITHIN_S",
    "HEARTBEAT_MEMORY",
    "HEARTBEAT_PENDING",
    "HEARTBEAT_STALE_AFTER_S",
    "IDLE_BEAT_S",
    "OUTAGE_BEAT_S",
    "PER_HOST",
    "RULES",
    "RULE_FOLDER",
    "RULE_GROUP",
    "UNKNOWN",
    "AlertSpec",
    "CollectorMetrics",
    "PanelId",
    "Severity",
    "current_or_last",
    "measured",
    "number",
)

GRAFANA_VERSION: Final = "13.2.3"
"""The Grafana image tag the provisioning targets (``grafana/grafana:13.2.3``)."""

DATASOURCE_PROMETHEUS: Final = "prometheus"
DATASOURCE_TEMPO: Final = "tempo"
DATASOURCE_LOKI: Final = "loki"
DASHBOARD_UID: Final = "mnemo-importer"

RULE_FOLDER: Final = "Mnemo alerts"
"""Not the dashboards' folder title: Grafana would create a second folder of the same title."""
RULE_GROUP: Final = "mnemo-importer"
EVALUATION_INTERVAL_S: Final = 30
EVALUATION_INTERVAL: Final = f"{EVALUATION_INTERVAL_S}s"

IDLE_BEAT_S: Final = 5
"""Longest gap between two beats of a live, idle work loop (``ImportSettings.idle_beat_seconds``)."""
OUTAGE_BEAT_S: Final = 25
"""Longest gap between beats while the database is down: one failing attempt (connect timeout 10 s)
plus the longest retry pause (``RetrySettings.max_seconds``, 15 s); the loop beats before each pause."""
EXPORT_INTERVAL_S: Final = 15
"""``OTEL_METRIC_EXPORT_INTERVAL`` of the importer, in seconds."""
HEARTBEAT_STALE_AFTER_S: Final = 3 * (IDLE_BEAT_S + EXPORT_INTERVAL_S)
"""60 s: a live loop shows at most beat + export (20 s) of heartbeat age, 40 s during a database
outage; three times the idle worst case is a stall."""
HEARTBEAT_PENDING: Final = f"{EVALUATION_INTERVAL_S}s"
"""One evaluation interval: two stale evaluations in a row fire, one late export does not."""
HEARTBEAT_FIRES_WITHIN_S: Final = HEARTBEAT_STALE_AFTER_S + 2 * EVALUATION_INTERVAL_S
"""120 s after the last beat at most: the first evaluation strictly past the threshold comes within
one interval, then ``for`` waits one more evaluation."""

HEARTBEAT_MEMORY: Final = "1h"
"""How far back the heartbeat alert looks for a host's last beat (its age is shown up to this; a
member silent for longer shows 1e9). Longer windows cost every evaluation more samples."""

ATTR_ERROR = names.ATTR_ERROR_TYPE.replace(".", "_")
ATTR_VOLUME = names.ATTR_VOLUME.replace(".", "_")
ATTR_FLEET_HOST = names.ATTR_FLEET_HOST.replace(".", "_")
PER_HOST: Final = "service_instance_id"
"""The label of ``service.instance.id`` (the host id): every per-process alert fires per host."""
_ON_HOST = "{{ with $labels.service_instance_id }} on {{ . }}{{ end }}"
UNKNOWN: Final = "is unknown: the query failed or returned no data."
"""How a summary ends when there is no value to show (the notification gives the state reason)."""


def measured(known: str, unknown: str) -> str:
    """``known`` (which reads the query's value as ``.Value``) when there is a value, else ``unknown``.

    Grafana evaluates annotations with ``$values`` empty on an evaluation error or NoData; a function
    given the missing ``$values.A.Value`` then fails and the raw template text is sent, so the value
    is read only inside ``with``, and the other branch says it is unknown."""
    return f"{{{{ with $values.A }}}}{known}{{{{ else }}}}{unknown}{{{{ end }}}}"


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    NONE = "none"
    """Never for a human: the dead man's switch."""


class PanelId(IntEnum):
    """Dashboard panels an alert links to (Grafana sets the notification's PanelURL from them)."""

    HEARTBEAT_AGE = 1
    LAST_SUCCESS = 2
    BACKLOG_AGE = 3
    DB_UP = 4
    FAILURES = 12
    QUARANTINE = 13
    MEMORY = 20
    DISK = 22
    PIPELINE = 23
    AVAILABILITY = 50
    IMPORT_SUCCESS = 52
    LINES_LOST = 54
    WITNESS_HEARD = 57
    ARCHIVE_MISSING = 60
    SCRUB_AGE = 61
    SOURCE_LOST = 62
    RETENTION = 63
    RESTORE_INEXACT = 64


NoDataState = Literal["Alerting", "NoData", "OK", "KeepLast"]
ExecErrState = Literal["Alerting", "Error", "OK", "KeepLast"]


@dataclass(frozen=True, slots=True)
class AlertSpec:
    """One alert: ``query`` (refId A) compared with ``threshold`` by ``op``.

    :param name: alert name in Grafana and in the Prometheus mirror (a valid metric-style name).
    :param uid: Grafana rule uid, stable, at most 40 characters.
    :param pending: Grafana ``for`` / Prometheus ``for``.
    :param keep_firing_for: how long the alert outlives a condition that just cleared.
    :param no_data: Grafana state when the query returns nothing (not modelled by promtool).
    """

    name: str
    uid: str
    query: str
    op: Literal["gt", "lt"]
    threshold: float
    pending: str
    keep_firing_for: str
    no_data: NoDataState
    exec_err: ExecErrState
    severity: Severity
    panel: PanelId | None
    summary: str
    description: str
    runbook: str

    @property
    def runbook_anchor(self) -> str:
        """The runbook section's anchor: its heading is the alert name (Markdown slug: lower case)."""
        return self.name.lower()

    @property
    def condition(self) -> str:
        """The PromQL condition the Prometheus mirror alerts on."""
        symbol = ">" if self.op == "gt" else "<"
        return f"({self.query}) {symbol} {number(self.threshold)}"


def number(value: float) -> str:
    """PromQL/YAML-friendly number: integral values without a fraction, others exactly."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def current_or_last(aggregate: str, metric: str, window: str) -> str:
    """Per host: the current value, else the last one seen within ``window`` (the alert holds while
    that host's data vanishes)."""
    by = f"{aggregate} by ({PER_HOST})"
    return f"{by} ({metric}) or on ({PER_HOST}) {by} (last_over_time({metric}[{window}]))"


def _heartbeat_age() -> str:
    """Heartbeat age per host, for every host that must beat; never empty.

    The hosts that must beat are the fleet's members as every live importer exports them (a host
    retired on purpose leaves that list), so a dead host keeps its alert after its own series are
    gone: its age while its last beat is within :data:`HEARTBEAT_MEMORY`, 1e9 after. When no importer
    exports members (all dead), every host seen beating within the memory window is judged; with no
    heartbeat at all, 1e9 without a host label.
    """
    age = f"(time() - max by ({PER_HOST}) (last_over_time({_HB}[{HEARTBEAT_MEMORY}])))"
    members = (
        f"max by ({PER_HOST}) (label_join(max by ({ATTR_FLEET_HOST}) ({names.FLEET_MEMBER.prometheus}), "
        f'"{PER_HOST}", "", "{ATTR_FLEET_HOST}"))'
    )
    return (
        f"({age} and on ({PER_HOST}) {members})"
        f" or on ({PER_HOST}) ({members} * 0 + 1e9)"
        f" or ({age} unless on () {members})"
        " or on() vector(1e9)"
    )


_HB = names.HEARTBEAT.prometheus
_AGE = names.BACKLOG_OLDEST_AGE.prometheus
_MEM = names.PROCESS_MEMORY.prometheus
_GAP_QUERY = current_or_last("max", _AGE, "1h")

RULES: Final[tuple[AlertSpec, ...]] = (
    AlertSpec(
        name="MnemoHeartbeatStale",
        uid="mnemo-heartbeat-stale",
        query=_heartbeat_age(),
        op="gt",
        threshold=HEARTBEAT_STALE_AFTER_S,
        pending=HEARTBEAT_PENDING,
        keep_firing_for="2m",
        no_data="Alerting",
        exec_err="Alerting",
        severity=Severity.CRITICAL,
        panel=PanelId.HEARTBEAT_AGE,
        summary=measured(
            "{{ if gt .Value 1e8 }}No importer heartbeat"
            "{{ with $labels.service_instance_id }} from {{ . }}{{ end }} for over an hour."
            f"{{{{ else }}}}The importer work loop{_ON_HOST} last made progress "
            "{{ humanizeDuration .Value }} ago.{{ end }}",
            f"The importer heartbeat age{_ON_HOST} {UNKNOWN} Is Prometheus up?",
        ),
        description=(
            "The heartbeat is the Unix time the work loop last made progress. A live loop beats at "
            f"least every {IDLE_BEAT_S} s (every {OUTAGE_BEAT_S} s while the database is down) and "
            f"exports every {EXPORT_INTERVAL_S} s, so its age stays under "
            f"{OUTAGE_BEAT_S + EXPORT_INTERVAL_S} s. Over {HEARTBEAT_STALE_AFTER_S} s on two "
            "evaluations in a row means the importer is dead, hung (blocked loop or a DB call that "
            "never returns), or its telemetry does not reach Prometheus; this fires at most "
            f"{HEARTBEAT_FIRES_WITHIN_S // 60} minutes after the last beat. Transcripts are deleted "
            "by their tool after 30 days. Per host (service_instance_id): a fleet member keeps firing "
            "until it beats again or is retired with `mnemo-otel hosts retire`."
        ),
        runbook=(
            "Check `docker compose ps importer` and its logs for a watchdog stack dump (a hung loop "
            "is restarted after MNEMO_WATCHDOG__TIMEOUT_SECONDS, default 120 s); run "
            "`mnemo-otel health`; if the collector is down too, see MnemoTelemetryExportFailing. "
            "Silence this rule during a planned stop; retire a decommissioned host "
            "(`mnemo-otel hosts retire ID`)."
        ),
    ),
    AlertSpec(
        name="MnemoImportGap",
        uid="mnemo-import-gap-warning",
        query=_GAP_QUERY,
        op="gt",
        threshold=600,
        pending="5m",
        keep_firing_for="0s",
        no_data="OK",
        exec_err="Error",
        severity=Severity.WARNING,
        panel=PanelId.BACKLOG_AGE,
        summary=measured(
            f"Transcript lines have waited {{{{ humanizeDuration .Value }}}} without being imported{_ON_HOST}.",
            f"How long transcript lines have waited for import{_ON_HOST} {UNKNOWN}",
        ),
        description=(
            "backlog.oldest_age is the age of the oldest complete line not yet committed; it is 0 when "
            "nothing waits, so an idle user never fires this. It grows when imports stall or fail."
        ),
        runbook=(
            "Open the dashboard: look at import failures by type and DB up; check the importer logs "
            "for the failing file; `mnemo-otel health` shows whether the checkpoint progresses."
        ),
    ),
    AlertSpec(
        name="MnemoImportGapCritical",
        uid="mnemo-import-gap-critical",
        query=_GAP_QUERY,
        op="gt",
        threshold=3600,
        pending="5m",
        keep_firing_for="0s",
        no_data="OK",
        exec_err="Error",
        severity=Severity.CRITICAL,
        panel=PanelId.BACKLOG_AGE,
        summary=measured(
            f"Transcript lines have waited {{{{ humanizeDuration .Value }}}} without being imported{_ON_HOST}.",
            f"How long transcript lines have waited for import{_ON_HOST} {UNKNOWN}",
        ),
        description="The import gap has lasted over an hour: history is at risk if it is not fixed.",
        runbook=(
            "As for MnemoImportGap; if the DB is up and the loop beats, look for one file failing "
            "repeatedly (failures by error type, quarantine) and restart the importer."
        ),
    ),
    AlertSpec(
        name="MnemoImportFailing",
        uid="mnemo-import-failing",
        query=f"sum by ({PER_HOST}, {ATTR_ERROR}) (increase({names.IMPORT_FAILURES.prometheus}[5m]))",
        op="gt",
        threshold=3,
        pending="10m",
        keep_firing_for="5m",
        no_data="OK",
        exec_err="Error",
        severity=Severity.WARNING,
        panel=PanelId.FAILURES,
        summary=measured(
            '{{ printf "%.0f" .Value }} import attempts failed{{ with $labels.error_type }} with '
            f"{{{{ . }}}}{{{{ end }}}}{_ON_HOST} in the last 5 minutes, for over 10 minutes now.",
            f"The number of failed imports{_ON_HOST} {UNKNOWN}",
        ),
        description=(
            "Imports keep failing and are being retried with backoff; nothing is lost yet. A burst "
            "of retries that stops within 5 minutes (a database restart) stays quiet."
        ),
        runbook=(
            "Filter the importer logs by error.type; db_unavailable -> see MnemoDatabaseDown; io -> "
            "check permissions and the watched volume."
        ),
    ),
    AlertSpec(
        name="MnemoQuarantineGrowing",
        uid="mnemo-quarantine-growing",
        query=f"sum by ({PER_HOST}, {ATTR_ERROR}) (increase({names.QUARANTINED.prometheus}[1h]))",
        op="gt",
        threshold=5,
        pending="1m",
        keep_firing_for="0s",
        no_data="OK",
        exec_err="Error",
        severity=Severity.WARNING,
        panel=PanelId.QUARANTINE,
        summary=measured(
            '{{ printf "%.0f" .Value }} transcript lines were quarantined'
            f"{{{{ with $labels.error_type }}}} ({{{{ . }}}}){{{{ end }}}}{_ON_HOST} in the last hour.",
            f"The number of quarantined lines{_ON_HOST} {UNKNOWN}",
        ),
        description="Lines that are not JSON objects go to mnemo.quarantine with their raw bytes.",
        runbook=(
            "Query mnemo.quarantine by error kind and source path; a burst from one file usually "
            "means a writer bug or disk corruption."
        ),
    ),
    AlertSpec(
        name="MnemoDatabaseDown",
        uid="mnemo-database-down",
        query=current_or_last("min", names.DB_UP.prometheus, "1h"),
        op="lt",
        threshold=1,
        pending="2m",
        keep_firing_for="1m",
        no_data="OK",
        exec_err="Error",
        severity=Severity.CRITICAL,
        panel=PanelId.DB_UP,
        summary=measured(
            f"The importer{_ON_HOST} cannot use PostgreSQL: its last database operation failed.",
            f"Whether the importer{_ON_HOST} can use PostgreSQL {UNKNOWN}",
        ),
        description="Imports are paused and retried; data waits in the transcript files meanwhile.",
        runbook=(
            "Check `docker compose ps postgres`, its logs and free disk; the importer resumes by "
            "itself once the database answers."
        ),
    ),
    AlertSpec(
        name="MnemoMemoryGrowth",
        uid="mnemo-memory-growth",
        query=(
            f"max by ({PER_HOST}) (avg_over_time({_MEM}[1h])) "
            f"- max by ({PER_HOST}) (avg_over_time({_MEM}[1h] offset 3h))"
        ),
        op="gt",
        threshold=128 * 1024 * 1024,
        pending="30m",
        keep_firing_for="0s",
        no_data="OK",
        exec_err="Error",
        severity=Severity.WARNING,
        panel=PanelId.MEMORY,
        summary=measured(
            f"Importer memory{_ON_HOST} grew by {{{{ humanize1024 .Value }}}}B over 3 hours (hourly averages).",
            f"The importer's memory growth{_ON_HOST} {UNKNOWN}",
        ),
        description="Memory should stay flat while streaming transcripts; steady growth means a leak.",
        runbook="Note the growth rate, then restart the importer; attach the memory panel to a bug report.",
    ),
    AlertSpec(
        name="MnemoDiskNearlyFull",
        uid="mnemo-disk-nearly-full",
        query=f"max by ({PER_HOST}, {ATTR_VOLUME}) ({names.FILESYSTEM_UTILIZATION.prometheus})",
        op="gt",
        threshold=0.9,
        pending="10m",
        keep_firing_for="0s",
        no_data="OK",
        exec_err="Error",
        severity=Severity.WARNING,
        panel=PanelId.DISK,
        summary=measured(
            f"Volume{{{{ with $labels.mnemo_volume }}}} {{{{ . }}}}{{{{ end }}}}{_ON_HOST} is "
            "{{ humanizePercentage .Value }} full.",
            f"How full the importer's volumes are{_ON_HOST} {UNKNOWN}",
        ),
        description="A full data volume stops PostgreSQL; a full watched volume stops the transcript writer.",
        runbook="Free space or grow the volume; never delete transcripts that are not yet imported.",
    ),
)
