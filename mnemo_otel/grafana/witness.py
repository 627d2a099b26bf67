"""The second witness's alerts: Claude Code's own record of what it wrote, held against the archive.

The witness (``mnemo-otel witness``) exports per host (``mnemo_witness_host``, the host Claude Code's
events named) the lines it was told of that the archive still lacks after the grace period, and when
it last heard from that host. The importer's series carry their host in ``service_instance_id``;
``label_replace`` copies one into the other to join them.

Two rules: MnemoWitnessGap (the archive lacks witnessed lines: a loss our own discovery cannot see)
and MnemoWitnessSilent (the host's importer stores prompts while the witness hears nothing: the second
witness went off there, so its silence proves nothing).
"""

from __future__ import annotations

from typing import Final

from mnemo_otel.grafana.spec import (
    ATTR_FLEET_HOST,
    HEARTBEAT_MEMORY,
    PER_HOST,
    UNKNOWN,
    AlertSpec,
    PanelId,
    Severity,
    measured,
    number,
)
from mnemo_otel.telemetry import names

__all__ = (
    "ARCHIVER",
    "GRACE_S",
    "NO_ARCHIVER",
    "RULES",
    "SILENT_AFTER_S",
    "WITNESS_HOST",
    "WITNESS_MEMORY_S",
    "importing_hosts",
    "unarchived",
)

WITNESS_HOST: Final = names.ATTR_WITNESS_HOST.replace(".", "_")
"""The label of the host an event named (``mnemo_witness_host``)."""
ARCHIVER: Final = "mnemo_archiver"
"""Set to :data:`NO_ARCHIVER` on a gap of a named host no importer archives: the summary reads it."""
NO_ARCHIVER: Final = "none"
GRACE_S: Final = 300
"""``WitnessSettings.grace_seconds``: a line younger than this is not yet counted as unarchived."""
SILENT_AFTER_S: Final = 3600
"""An hour of silence from a host whose importer stored prompts within that hour."""
WITNESS_MEMORY_S: Final = 7 * 86400
"""A host last heard longer ago than this is taken as telemetry turned off on purpose."""

_UNARCHIVED = names.WITNESS_UNARCHIVED.prometheus
_LAST_HEARD = names.WITNESS_LAST_HEARD.prometheus
_UNKNOWN = names.WITNESS_UNKNOWN_HOST


def _as_witness_host(vector: str, label: str) -> str:
    """``vector`` with its host label ``label`` copied to ``mnemo_witness_host``."""
    return f'label_replace({vector}, "{WITNESS_HOST}", "$1", "{label}", "(.+)")'


def unarchived(selector: str = "") -> str:
    """Unarchived lines per witnessed host (``max``: a restarted witness's old series lingers)."""
    return f"max by ({WITNESS_HOST}) ({_UNARCHIVED}{selector})"


def importing_hosts() -> str:
    """Hosts some importer archives, as ``mnemo_witness_host``: the fleet's members as live importers
    export them, and any host that beat within the heartbeat alert's memory (a lone importer, or a
    dead one the heartbeat alert already reports)."""
    members = _as_witness_host(
        f"max by ({ATTR_FLEET_HOST}) ({names.FLEET_MEMBER.prometheus})", ATTR_FLEET_HOST
    )
    beating = _as_witness_host(
        f"max by ({PER_HOST}) (last_over_time({names.HEARTBEAT.prometheus}[{HEARTBEAT_MEMORY}]))", PER_HOST
    )
    return f"max by ({WITNESS_HOST}) ({members} or {beating})"


def _gap_query() -> str:
    """Unarchived lines per host; a named host that no importer archives carries ``mnemo_archiver="none"``."""
    named = unarchived(f'{{{WITNESS_HOST}!="{_UNKNOWN}"}}')
    orphaned = f'label_replace({named} unless on ({WITNESS_HOST}) {importing_hosts()}, "{ARCHIVER}", "{NO_ARCHIVER}", "", "")'
    return f"{orphaned} or on ({WITNESS_HOST}) {unarchived()}"


def _silent_query() -> str:
    """Seconds since the witness last heard from a host it heard within a week, for the hosts whose
    importer stored at least one exchange in the last hour."""
    heard_age = f"time() - max by ({WITNESS_HOST}) ({_LAST_HEARD})"
    exchanges = f"sum by ({PER_HOST}) (increase({names.EXCHANGES_IMPORTED.prometheus}[1h])) > 0"
    return f"({heard_age} < {number(WITNESS_MEMORY_S)}) and on ({WITNESS_HOST}) {_as_witness_host(exchanges, PER_HOST)}"


_HOST = f"{{{{ with $labels.{WITNESS_HOST} }}}} on {{{{ . }}}}{{{{ end }}}}"
_GAP_SUMMARY = measured(
    '{{ printf "%.0f" .Value }} line(s) Claude Code wrote'
    f"{{{{ with $labels.{WITNESS_HOST} }}}}"
    f'{{{{ if eq . "{_UNKNOWN}" }}}} on a host its events did not name are missing from the archive. '
    "Set OTEL_RESOURCE_ATTRIBUTES=mnemo.host.id=$MNEMO_HOST_ID where Claude Code runs, so the witness "
    "can name the host."
    f"{{{{ else }}}} on {{{{ . }}}} are missing from the archive."
    f"{{{{ if $labels.{ARCHIVER} }}}} Claude Code is used on {{{{ . }}}} and nothing archives it.{{{{ end }}}}"
    "{{ end }}"
    "{{ else }} are missing from the archive.{{ end }}",
    f"How many witnessed lines the archive lacks {UNKNOWN}",
)
_SILENT_SUMMARY = measured(
    f"The witness has heard nothing from Claude Code{_HOST} for {{{{ humanizeDuration .Value }}}}, yet "
    "its importer stored prompts in the last hour: the witness no longer hears that host, so its "
    "silence proves nothing there.",
    f"How long the witness has not heard from a host whose importer stores prompts {UNKNOWN}",
)

RULES: Final[tuple[AlertSpec, ...]] = (
    AlertSpec(
        name="MnemoWitnessGap",
        uid="mnemo-witness-gap",
        query=_gap_query(),
        op="gt",
        threshold=0,
        pending="5m",
        keep_firing_for="0s",
        no_data="OK",
        exec_err="Error",
        severity=Severity.CRITICAL,
        panel=PanelId.LINES_LOST,
        summary=_GAP_SUMMARY,
        description=(
            "Claude Code's own telemetry says it wrote these transcript lines; the archive has lacked "
            f"them for over {GRACE_S // 60} minutes (the witness's grace period) and 5 more. Our own "
            "discovery, verify and the scrub never saw them: a folder no importer watches (a "
            "CLAUDE_CONFIG_DIR set in one shell), a host without an importer, or an importer bug. "
            "Per host (mnemo_witness_host); `unknown` when the events named no host. Transcripts "
            "are deleted by Claude Code after cleanupPeriodDays."
        ),
        runbook=(
            "Run `mnemo-otel witness status --json` for the hosts and sessions; import the missing "
            "folder (add it to MNEMO_ROOTS, or install the importer on that host)."
        ),
    ),
    AlertSpec(
        name="MnemoWitnessSilent",
        uid="mnemo-witness-silent",
        query=_silent_query(),
        op="gt",
        threshold=SILENT_AFTER_S,
        pending="10m",
        keep_firing_for="0s",
        no_data="OK",
        exec_err="Error",
        severity=Severity.WARNING,
        panel=PanelId.WITNESS_HEARD,
        summary=_SILENT_SUMMARY,
        description=(
            "The witness heard Claude Code on this host within the last 7 days, but nothing for an "
            "hour while the host's importer stored prompts: Claude Code's telemetry was turned off "
            "there (CLAUDE_CODE_ENABLE_TELEMETRY, the OTLP endpoint), or the collector or the witness "
            "drops its events. MnemoWitnessGap cannot fire for lines it never heard of. A host never "
            "heard gets no alert: the dashboard shows the witness as off."
        ),
        runbook=(
            "Check Claude Code's telemetry settings on the host, the collector's logs pipeline and "
            "`docker compose logs witness`; `mnemo-otel witness status --json` shows each host's figures."
        ),
    ),
)
