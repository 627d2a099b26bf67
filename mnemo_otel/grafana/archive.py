"""The archive's own alerts and dashboard row: zero loss, observed.

Four rules, one spec: an archive mismatch (the last scrub found lines on disk missing from the
archive), a scrub that is overdue (none completed for two of its intervals), source lines lost
(complete lines gone from disk before they were committed), and files the restore drill found the
archive can no longer give back exactly. The row shows the same figures, and the retention guard:
Claude Code's ``cleanupPeriodDays``, red under a week.
"""

from __future__ import annotations

from typing import Any, Final

from mnemo_otel.grafana.spec import PER_HOST, UNKNOWN, AlertSpec, PanelId, Severity, current_or_last, measured
from mnemo_otel.retention import SHORT_RETENTION_DAYS
from mnemo_otel.telemetry import names

__all__ = ("RESTORE_INEXACT_PENDING", "RULES", "SCRUB_OVERDUE_INTERVALS", "archive_row")

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

_RESTORE_KIND = names.ATTR_RESTORE_KIND.replace(".", "_")
_RESTORE = names.RESTORE_INEXACT.prometheus
# Damaged files per host; through a restart (the gauge is absent until the new process has drilled)
# the last value of the hour stands, so the alert neither resolves nor pages again for a restart.
_DAMAGED = current_or_last("max", f'{_RESTORE}{{{_RESTORE_KIND}="{names.RESTORE_DAMAGED}"}}', "1h")
RESTORE_INEXACT_PENDING: Final = "5m"
"""The gauge moves only when a drill completes (at start and after each scrub, daily by default), so
damage it found stays until repaired and five minutes cost nothing against a day between drills;
they keep one stray sample (a scrape racing a restart) from paging anyone for a critical alert."""

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
    AlertSpec(
        name="MnemoRestoreInexact",
        uid="mnemo-restore-inexact",
        query=_DAMAGED,
        op="gt",
        threshold=0,
        pending=RESTORE_INEXACT_PENDING,
        keep_firing_for="0s",
        no_data="OK",
        exec_err="Error",
        severity=Severity.CRITICAL,
        panel=PanelId.RESTORE_INEXACT,
        summary=measured(
            f'{{{{ printf "%.0f" .Value }}}} transcript file(s){_ON_HOST} can no longer be '
            "restored exactly from the archive.",
            f"How many files{_ON_HOST} the archive can restore exactly {UNKNOWN}",
        ),
        description=(
            "The restore drill (restore --check, run by the daemon at start and after each scrub) "
            "rebuilds every file of the host from mnemo.blocks and checks it against the digests taken "
            "from the source at import. These files are damaged: bytes missing, or not the bytes that "
            "were read (rows deleted or edited behind the importer's back, a partial restore of the "
            "database). Once Claude Code deletes the source they come back wrong or not at all. Files "
            "imported before exact lines were kept are counted apart and never fire this."
        ),
        runbook=(
            "`mnemo-otel restore --check` on the host names the files; back up the database; while a "
            "file's source exists, reset its checkpoint so the importer reads it again (runbook)."
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


def _restore_stat() -> dict[str, Any]:
    """Inexact files by kind, summed over the selected hosts (each host's own files): damaged is red
    from one file; files from before exact lines stay blue, a known fact that nothing will change."""
    panel = _stat(
        PanelId.RESTORE_INEXACT,
        "Not restorable exactly (last drill)",
        f"sum by ({_RESTORE_KIND}) (max by ({HOST}, {_RESTORE_KIND}) ({_RESTORE}))",
        "none",
        [("green", None), ("red", 1)],
    )
    panel["targets"][0]["legendFormat"] = f"{{{{{_RESTORE_KIND}}}}}"
    before = {"id": "byName", "options": names.RESTORE_BEFORE_EXACT_LINES}
    fixed_blue = {"id": "color", "value": {"mode": "fixed", "fixedColor": "blue"}}
    panel["fieldConfig"]["overrides"] = [{"matcher": before, "properties": [fixed_blue]}]
    panel["gridPos"].update(w=12)
    return panel


def archive_row(y: int) -> list[dict[str, Any]]:
    """Missing at the last scrub, time since it, lost bytes, and the source's retention, at row ``y``;
    below them the restore drill's inexact files by kind."""
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
    restore = _restore_stat()
    restore["gridPos"].update(y=y + 4)
    return [*stats, restore]
