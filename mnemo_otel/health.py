"""Health endpoint: ``/healthz`` (is the loop alive?) and ``/readyz`` (can it import?), as JSON.

The verdict is a pure function of the loop state (:func:`evaluate`), served from a thread so it
answers even when the event loop is stuck, and says so instead of timing out. Anything but
healthy/degraded is a non-2xx answer: the previous system returned 200 with a stale heartbeat.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

from .retention import SHORT_RETENTION_DAYS
from .settings import HealthSettings
from .state import LoopState
from .telemetry import names

__all__ = ("HealthReport", "HealthServer", "archive_notes", "archive_warnings", "evaluate", "probe")

logger = logging.getLogger(__name__)

Status = Literal["healthy", "degraded", "unhealthy"]
BACKLOG_DEGRADED_AFTER_SECONDS = 600.0


@dataclass(frozen=True)
class HealthReport:
    status: Status
    heartbeat_age_seconds: float
    last_success: float | None
    db_up: bool
    backlog_bytes: int
    backlog_oldest_age_seconds: float
    reasons: list[str] = field(default_factory=list)
    source_lost_bytes: int = 0
    verify_missing: int | None = None
    retention_days: float | None = None
    restore_inexact: dict[str, int] | None = None  # by kind, at the last restore drill
    notes: list[str] = field(default_factory=list)  # worth knowing, not a reason to be degraded

    @property
    def http_status(self) -> int:
        return 503 if self.status == "unhealthy" else 200


def evaluate(
    state: LoopState, settings: HealthSettings, *, ready: bool, now: float | None = None
) -> HealthReport:
    """Liveness looks at the heartbeat only; readiness also needs the database and a draining backlog."""
    now = time.time() if now is None else now
    age = max(0.0, now - state.heartbeat)
    backlog_age = state.backlog_oldest_age(now)
    reasons: list[str] = []
    status: Status = "healthy"
    if age > settings.stale_after_seconds:
        status = "unhealthy"
        reasons.append(f"heartbeat stale for {age:.0f}s: the work loop is stuck or dead")
    if ready and not state.db_up:
        status = "unhealthy"
        reasons.append(f"database unavailable (last error: {state.last_error or 'none yet'})")
    if ready and backlog_age > BACKLOG_DEGRADED_AFTER_SECONDS:
        reasons.append(f"oldest waiting data is {backlog_age:.0f}s old")
    warnings = archive_warnings(state)
    reasons += warnings
    if status == "healthy" and (warnings or (ready and backlog_age > BACKLOG_DEGRADED_AFTER_SECONDS)):
        status = "degraded"
    return HealthReport(
        status,
        round(age, 3),
        state.last_success,
        state.db_up,
        state.backlog_bytes,
        round(backlog_age, 3),
        reasons,
        state.source_lost_bytes,
        state.verify_missing,
        state.retention_days,
        dict(state.restore_inexact) if state.restore_inexact is not None else None,
        archive_notes(state),
    )


def archive_warnings(state: LoopState) -> list[str]:
    """Zero loss, observed: recorded losses, a mismatch at the last scrub, damage found by the restore
    drill, a short source retention."""
    warnings = []
    if state.source_lost_bytes > 0:
        warnings.append(
            f"{state.source_lost_bytes} bytes of transcript lines vanished from disk before they were "
            f"imported ({state.source_loss_events} event(s), see mnemo.source_losses)"
        )
    if state.verify_missing:
        warnings.append(f"the last scrub found {state.verify_missing} line(s) missing from the archive")
    damaged = (state.restore_inexact or {}).get(names.RESTORE_DAMAGED, 0)
    if damaged:
        warnings.append(
            f"the last restore drill found {damaged} file(s) the archive can no longer give back "
            "exactly (mnemo-otel restore --check names them)"
        )
    if state.retention_days is not None and state.retention_days < SHORT_RETENTION_DAYS:
        warnings.append(
            f"Claude Code deletes transcripts after {state.retention_days:g} day(s) (cleanupPeriodDays): "
            "an importer outage longer than that loses history"
        )
    return warnings


def archive_notes(state: LoopState) -> list[str]:
    """Known, permanent facts of the archive: shown, never degrading, since no alarm can change them."""
    before = (state.restore_inexact or {}).get(names.RESTORE_BEFORE_EXACT_LINES, 0)
    if not before:
        return []
    note = (
        f"{before} file(s) were imported before exact lines were kept: their lines from then are "
        "archived, not their exact bytes (restore --check lists them)"
    )
    return [note]


class HealthServer:
    """A small threaded HTTP server bound to 127.0.0.1 by default; ``port`` 0 picks a free one."""

    def __init__(self, state: LoopState, settings: HealthSettings) -> None:
        handler = _handler_for(state, settings)
        self._server = ThreadingHTTPServer((settings.host, settings.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="mnemo-health", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        logger.info("health endpoint listening", extra={"mnemo.health.port": self.port})

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(state: LoopState, settings: HealthSettings) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in ("/healthz", "/readyz"):
                self.send_error(404)
                return
            report = evaluate(state, settings, ready=self.path == "/readyz")
            body = json.dumps(asdict(report)).encode()
            self.send_response(report.http_status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # probes every few seconds would drown the log

    return Handler


def probe(settings: HealthSettings, *, ready: bool = False, timeout: float = 5.0) -> tuple[bool, str]:
    """Ask a running importer; ``(healthy_or_degraded, body or reason)`` for ``mnemo-otel health``."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "") else settings.host  # noqa: S104 -- a wildcard bind is probed on loopback
    url = f"http://{host}:{settings.port}/{'readyz' if ready else 'healthz'}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return True, response.read().decode()
    except urllib.error.HTTPError as exc:
        return False, exc.read().decode() or str(exc)
    except OSError as exc:
        return False, f"no answer from {url}: {exc}"
