"""A webhook that writes each alert Grafana sends to the log: the stack's channel out of the box.

With no channel configured, alerts still have to land somewhere a person can see, and a webhook to
nowhere would fail on every notification. ``docker compose logs alert-log`` shows them. It answers
``GET /healthz`` so ``mnemo-otel health`` can probe it like the importer.
"""

from __future__ import annotations

import json
import logging
import signal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

__all__ = ("MAX_BODY_BYTES", "describe", "serve_alert_log")

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024


def describe(payload: Any) -> list[str]:
    """One line per alert of a Grafana webhook payload: state, name, severity, host, since, summary."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise TypeError("not a Grafana webhook payload (no alerts list)")
    lines = []
    for alert in payload["alerts"]:
        if not isinstance(alert, dict):
            raise TypeError("not a Grafana webhook payload (an alert is not an object)")
        labels = alert.get("labels") or {}
        summary = (alert.get("annotations") or {}).get("summary", "")
        lines.append(
            f"{alert.get('status', '?')} {labels.get('alertname', '?')}"
            f" severity={labels.get('severity', '-')} host={labels.get('service_instance_id', '-')}"
            f" since={alert.get('startsAt', '?')}: {summary}".rstrip(": ")
        )
    return lines


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/healthz", "/readyz"):
            self._reply(200, {"status": "healthy"})
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY_BYTES:
            self._reply(413 if length else 400, {"error": "body missing or too large"})
            return
        try:
            lines = describe(json.loads(self.rfile.read(length)))
        except (ValueError, TypeError) as exc:
            logger.warning("alert-log: rejected a request: %s", exc)
            self._reply(400, {"error": str(exc)})
            return
        for line in lines:
            logger.warning("alert %s", line)
        self._reply(200, {"logged": len(lines)})

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not news; the alerts are."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve_alert_log(host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT (the CLI turns both into a clean exit)."""
    signal.signal(signal.SIGTERM, _stop)
    with ThreadingHTTPServer((host, port), _Handler) as server:
        logger.info("alert-log: listening on %s:%d", host, server.server_address[1])
        server.serve_forever()
