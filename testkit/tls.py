"""PostgreSQL that speaks TLS only, with a throw-away certificate authority (the ``openssl`` CLI).

Proves what a team deployment relies on: ``sslmode``/``sslrootcert`` in ``MNEMO_DATABASE_URL`` reach
the driver, a server certificate from another authority is refused, and plaintext is impossible.
"""

from __future__ import annotations

import ssl
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.tls import TLSStream

__all__ = ("TlsFiles", "TlsFrontend", "make_authority")

_SSL_REQUEST = 80877103


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_authority(directory: Path, name: str) -> TlsFiles:
    """A CA and a server certificate it signed for 127.0.0.1 (valid two days)."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-ca.key", "-out",
             f"{name}-ca.pem", "-days", "2", "-subj", f"/CN={name} test CA", cwd=directory)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-server.key", "-out",
             f"{name}-server.csr", "-subj", "/CN=127.0.0.1", cwd=directory)  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n", encoding="ascii")
    _openssl("x509", "-req", "-in", f"{name}-server.csr", "-CA", f"{name}-ca.pem", "-CAkey",
             f"{name}-ca.key", "-CAcreateserial", "-out", f"{name}-server.pem", "-days", "2",
             "-extfile", "san.ext", cwd=directory)  # fmt: skip
    return TlsFiles(
        directory / f"{name}-ca.pem", directory / f"{name}-server.pem", directory / f"{name}-server.key"
    )


class TlsFrontend:
    """A PostgreSQL endpoint that speaks TLS only, in front of a plaintext test server.

    The embedded server is built without SSL, so this does the server's part of the protocol: answer
    the client's SSLRequest with ``S``, complete the TLS handshake with ``files``, then relay the
    session to the real server. A client that starts in plaintext is disconnected, as a server with
    ``hostnossl ... reject`` would refuse it.
    """

    def __init__(self, backend_port: int, files: TlsFiles) -> None:
        self._backend_port = backend_port
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(files.cert, files.key)
        self.port = 0

    async def serve(self, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(SocketAttribute.local_port)
        async with listener:
            task_status.started(self.port)
            await listener.serve(self._handle)

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            head = await BufferedByteReceiveStream(client).receive_exactly(8)
            if struct.unpack("!ii", head) != (8, _SSL_REQUEST):
                return  # plaintext: refused
            await client.send(b"S")
            try:
                tls = await TLSStream.wrap(client, server_side=True, ssl_context=self._context)
            except (ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream):
                return  # the client did not trust our certificate
            backend = await anyio.connect_tcp("127.0.0.1", self._backend_port)
            async with backend, anyio.create_task_group() as relay:
                relay.start_soon(_pump, tls, backend, relay.cancel_scope)
                relay.start_soon(_pump, backend, tls, relay.cancel_scope)


async def _pump(source: anyio.abc.ByteStream, target: anyio.abc.ByteStream, scope: anyio.CancelScope) -> None:
    try:
        async for chunk in source:
            await target.send(chunk)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, ssl.SSLError, OSError):
        pass
    scope.cancel()
