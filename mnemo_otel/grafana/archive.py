"""The archive's own alerts and dashboard row: zero loss, observed.

Three rules, one spec: an archive mismatch (the last scrub found lines on disk missing from the
archive), a scrub that is overdue (none completed for two of its intervals), and source lines lost
(complete lines gone from disk before they were committed). The row shows the same figures, and the
retention guard: Claude Code's ``cleanupPeriodDays``, red under a week.
"""

from __future__ import annotations

from typing import Any, Final

from mnemo_otel.grafana.spec import PER_HOST, UNKNOWN, AlertSpec, PanelId, Severity, measured
from mnemo_otel.retention import SHORT_RETENTION_DAYS
from mnemo_otel.telemetry import names

__all__ = ("RULES", "SCRUB_OVERDUE_INTERVALS", "archive_row")

HOST: Final = PER_HOST
SCRUB_OVERDUE_INTERVALS: Final = 2
SOURCE_LOST_WINDOW: Final = "1h"
_ON_HOST = "{{ with $labels.service_instance_id }} on {{ . }}{{ end }}"

_MISSING = f"max by ({HOST}) ({names.VERIFY_MISSING.prometheus})"
# Since the last completed scrub; for a host that has never completed one, since its importer started
# (a scrub that fails every time would otherwise never be overdue).
_SCRUB_AGE_IN_INTERVALS = (
    f"((time() - max by ({HOST}) ({names.VERIFY_LAST_RUN.prometheus}))"
    f" or max by ({HOST}) ({names.PROCESS_UPTIME.prometheus}))"
    f" / max by ({HOST}) ({names.VERIFY_INTERVAL.prometheus})"
)
_LOST = f"sum by ({HOST}) (increase({names.SOURCE_LOST.prometheus}[{SOURCE_LOST_WINDOW}]))"

RULES: Final[tuple[AlertSpec, ...]] = (
    AlertSpec(
        name="MnemoArchiveMismatch",
        uid="mnemo-archive-mismatch",
        query=_MISSING,
        op="gt",
        threshold=0,
        pending="0s",
        keep_firing_for="0s",
        no_data="OK",
        exec_err="Error",
        severity=Severity.CRITICAL,
        panel=PanelId.ARCHIVE_MISSING,
        summary=measured(
            f'The last scrub{_ON_HOST} found {{{{ printf "%.0f" .Value }}}} transcript '
            "line(s) on disk missing from the archive.",
            f"What the last scrub{_ON_HOST} found {UNKNOWN}",
        ),
        description=(
            "The daemon's scrub re-reads what each checkpoint says was imported and checks every line "
            "is in mnemo.entries or mnemo.quarantine. Lines were missing: rows deleted behind the "
            "importer's back, a restore from an older backup, or an importer bug. The scrub has stored "
            "them again from the source; this stays firing until a scrub finds nothing missing."
        ),
        runbook=(
            "Run `mnemo-otel verify --json` for the missing lines (path, offset, key); find who "
            "deleted rows (database logs, restores); the scrub repaired them already."
        ),
    ),
    AlertSpec(
        name="MnemoScrubOverdue",
        uid="mnemo-scrub-overdue",
        query=_SCRUB_AGE_IN_INTERVALS,
        op="gt",
        threshold=SCRUB_OVERDUE_INTERVALS,
        pending="5m",
        keep_firing_for="0s",
        no_data="OK",
        exec_err="Error",
        severity=Severity.WARNING,
        panel=PanelId.SCRUB_AGE,
        summary=measured(
            f"No scrub of the archive has completed{_ON_HOST} for "
            '{{ printf "%.1f" .Value }} scrub intervals.',
            f"When a scrub of the archive last completed{_ON_HOST} {UNKNOWN}",
        ),
        description=(
            "Scrubs run every MNEMO_VERIFY__INTERVAL_SECONDS (one day by default) and the time of the "
            f"last completed one is kept across restarts. None for {SCRUB_OVERDUE_INTERVALS} intervals "
            "(or, on a host that never completed one, for that long since its importer started) "
            "means they keep failing (database errors, unreadable files) or the importer restarts "
            "before one completes: losses would go unnoticed."
        ),
        runbook=(
            "Look for 'scrub did not complete' in the importer logs; run `mnemo-otel verify` by hand; "
            "check the database and the watched volume."
        ),
    ),
    AlertSpec(
        name="MnemoSourceLost",
        uid="mnemo-source-lost",
        query=_LOST,
        op="gt",
        threshold=0,
        pending="0s",
        keep_firing_for="0s",
        no_data="OK",
        exec_err="Error",
        severity=Severity.CRITICAL,
        panel=PanelId.SOURCE_LOST,
        summary=measured(
            f"{{{{ humanize1024 .Value }}}}B of transcript lines{_ON_HOST} vanished from disk "
            f"before they were imported (last {SOURCE_LOST_WINDOW}).",
            f"Whether transcript lines{_ON_HOST} vanished before their import {UNKNOWN}",
        ),
        description=(
            "A transcript was deleted, cut short or replaced while complete lines in it were not yet "
            "committed (typically: the database was down and Claude Code's clean-up removed old "
            "transcripts). Those lines are gone for good; each event is in mnemo.source_losses."
        ),
        runbook=(
            "SELECT * FROM mnemo.source_losses ORDER BY detected_at DESC; find why the import was "
            "behind (database down, importer stopped) and raise cleanupPeriodDays."
        ),
    ),
)


def _stat(
    pid: int, title: str, expr: str, unit: str, steps: list[tuple[str, float | None]]
) -> dict[str, Any]:
    return {
        "id": pid,
        "type": "stat",
        "title": title,
        "gridPos": {"x": 0, "y": 0, "w": 6, "h": 4},
        "datasource": {"type": "prometheus", "uid": "prometheus"},
        "targets": [
            {
                "refId": "A",
                "datasource": {"type": "prometheus", "uid": "prometheus"},
                "editorMode": "code",
                "expr": expr,
                "legendFormat": "__auto",
                "instant": True,
                "range": False,
            }
        ],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": color, "value": value} for color, value in steps],
                },
                "color": {"mode": "thresholds"},
                "noValue": "none yet",
            },
            "overrides": [],
        },
        "options": {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"},
    }


def archive_row(y: int) -> list[dict[str, Any]]:
    """Missing at the last scrub, time since it, lost bytes, and the source's retention, at row ``y``."""
    ok, warn, bad = "green", "orange", "red"
    stats = [
        _stat(
            PanelId.ARCHIVE_MISSING,
            "Missing at last scrub",
            f"max({_MISSING})",
            "none",
            [(ok, None), (bad, 1)],
        ),
        _stat(
            PanelId.SCRUB_AGE,
            "Since last scrub",
            f"time() - max({names.VERIFY_LAST_RUN.prometheus})",
            "s",
            [(ok, None), (warn, 86400 * SCRUB_OVERDUE_INTERVALS)],
        ),
        _stat(
            PanelId.SOURCE_LOST,
            "Lost before import (all time)",
            f"max({names.SOURCE_LOST.prometheus})",
            "bytes",
            [(ok, None), (bad, 1)],
        ),
        _stat(
            PanelId.RETENTION,
            "Claude Code keeps transcripts",
            f"min({names.SOURCE_RETENTION.prometheus})",
            "s",
            [(bad, None), (ok, SHORT_RETENTION_DAYS * 86400)],
        ),
    ]
    for index, panel in enumerate(stats):
        panel["gridPos"].update(x=6 * index, y=y)
    return stats
