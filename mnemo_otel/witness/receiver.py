"""The witness's OTLP/HTTP logs endpoint: ``POST /v1/logs``, protobuf or JSON, gzip or not.

Bad input gets a clear status and never stops the service: 400 for a body that is not an export, 413
over the size limit, 415 for another content type, 401 for a wrong token, 503 with ``Retry-After``
while the database is down (the collector then retries: nothing is lost). Served from threads; each
accepted export is handed to the event loop, which owns the database connections.
"""

from __future__ import annotations

import hmac
import logging
import threading
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from anyio.from_thread import BlockingPortal

from ..errors import StoreError
from .events import BadExport, Heard, decode_export, heard

__all__ = ("WitnessReceiver",)

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS: Final = 5
_TYPES: Final = {"application/x-protobuf": "application/x-protobuf", "application/json": "application/json"}


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


class WitnessReceiver:
    """Serves until :meth:`stop`; ``on_export`` runs on the event loop through ``portal``."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        token: str | None,
        max_body_bytes: int,
        portal: BlockingPortal,
        on_export: Callable[[Heard], Awaitable[None]],
    ) -> None:
        self._token = token
        self._max = max_body_bytes
        self._portal = portal
        self._on_export = on_export
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                receiver._reply(self, receiver._post(self))

            def do_GET(self) -> None:
                answer = _Answer(200, b"ok\n") if self.path == "/healthz" else _Answer(404, b"not here\n")
                receiver._reply(self, answer)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="witness-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _post(self, request: BaseHTTPRequestHandler) -> _Answer:
        if request.path.split("?", 1)[0] != "/v1/logs":
            return _Answer(404, b"only POST /v1/logs is served here\n")
        if self._token is not None and not _bearer_matches(request.headers.get("Authorization"), self._token):
            return _Answer(401, b"a bearer token is required\n", headers=(("WWW-Authenticate", "Bearer"),))
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in _TYPES:
            return _Answer(415, b"OTLP logs as application/x-protobuf or application/json only\n")
        body = self._body(request)
        if isinstance(body, _Answer):
            return body
        try:
            export = heard(decode_export(body, content_type))
        except BadExport as exc:
            return _Answer(400, f"{exc}\n".encode())
        try:
            self._portal.call(self._on_export, export)
        except StoreError as exc:
            logger.warning("an export could not be recorded yet (%s); the sender will retry", exc.error_type)
            return _Answer(
                503,
                b"the archive is unavailable; retry\n",
                headers=(("Retry-After", str(RETRY_AFTER_SECONDS)),),
            )
        empty = b"{}" if content_type == "application/json" else b""  # an ExportLogsServiceResponse
        return _Answer(200, empty, content_type)

    def _body(self, request: BaseHTTPRequestHandler) -> bytes | _Answer:
        try:
            length = int(request.headers.get("Content-Length") or "")
        except ValueError:
            return _Answer(411, b"Content-Length required\n")
        if length < 0:
            return _Answer(400, b"bad Content-Length\n")
        if length > self._max:
            return _Answer(413, f"body over {self._max} bytes\n".encode())
        raw = request.rfile.read(length)
        encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding == "identity":
            return raw
        if encoding != "gzip":
            return _Answer(415, b"Content-Encoding gzip or none only\n")
        inflater = zlib.decompressobj(wbits=31)
        try:
            data = inflater.decompress(raw, self._max + 1)
        except zlib.error:
            return _Answer(400, b"not gzip\n")
        if len(data) > self._max or inflater.unconsumed_tail:
            return _Answer(413, f"body over {self._max} bytes once inflated\n".encode())
        return data

    def _reply(self, request: BaseHTTPRequestHandler, answer: _Answer) -> None:
        if request.command == "POST" and answer.status >= 400:
            request.close_connection = True  # an unread body must not be taken for the next request
        request.send_response(answer.status)
        request.send_header("Content-Type", answer.content_type)
        request.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers:
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(answer.body)


def _bearer_matches(header: str | None, token: str) -> bool:
    """In constant time, so the token cannot be guessed a byte at a time from response delays."""
    presented = (header or "").removeprefix("Bearer").strip()
    return hmac.compare_digest(presented.encode(), token.encode())
