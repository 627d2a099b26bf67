"""``mnemo-otel witness``: receive Claude Code's events, and reconcile them with the archive.

Every ``interval_seconds`` the reconciler marks the witnessed lines the archive now holds (their lag
goes to the histogram), and reads which are still missing past the grace period, by host, and when
each host was last heard: the gauges report that. A database that is down only delays it.
"""

from __future__ import annotations

import logging
from functools import partial

import anyio
from anyio.from_thread import BlockingPortal

from ..errors import ConfigError, StoreError
from ..settings import Settings
from ..signals import cancel_on_signal
from ..store.open import open_sink
from ..store.postgres import PostgresSink, translate_errors
from ..telemetry.witness import WitnessState, WitnessTelemetry
from . import store
from .events import Heard
from .receiver import WitnessReceiver

__all__ = ("serve_witness",)

logger = logging.getLogger(__name__)

_LAST_HEARD = "SELECT host, extract(epoch FROM last_heard_at)::float8 AS at FROM mnemo.witness_hosts"


class Witness:
    def __init__(self, sink: PostgresSink, settings: Settings) -> None:
        self.sink = sink
        self.settings = settings.witness
        self.state = WitnessState()
        self.telemetry = WitnessTelemetry(self.state)

    async def record(self, heard: Heard) -> None:
        async with translate_errors(), self.sink.connection() as conn:
            await store.record(conn, heard)
        self.telemetry.heard(heard.events)

    async def reconcile(self) -> None:
        async with translate_errors(), self.sink.connection() as conn:
            lags = await store.reconcile(conn)
            missing = await store.unarchived_by_host(conn, self.settings.grace_seconds)
            self.state.last_heard = {row["host"]: row["at"] for row in await conn.fetch(_LAST_HEARD)}
        # Every host heard reports, 0 included: a gap closing must show as 0, not as a series that
        # stops (Prometheus would hold its last value for minutes, and the alert with it).
        self.state.unarchived = {host: 0 for host in self.state.last_heard} | missing
        self.telemetry.archived(lags)
        if any(self.state.unarchived.values()):
            logger.warning(
                "witnessed lines missing from the archive past the grace period: %s",
                ", ".join(
                    f"{host or 'unknown host'}: {n}" for host, n in sorted(self.state.unarchived.items())
                ),
            )

    async def reconcile_forever(self) -> None:
        while True:
            try:
                await self.reconcile()
            except StoreError as exc:
                logger.warning("reconciliation postponed: %s", exc.error_type)
            await anyio.sleep(self.settings.interval_seconds)


async def serve_witness(settings: Settings, *, ready: anyio.Event | None = None) -> None:
    """Until SIGTERM or SIGINT: then the receiver stops and the connections close."""
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(partial(cancel_on_signal, tasks.cancel_scope, stopping="stopping"))
        await _serve(settings, ready)
        tasks.cancel_scope.cancel()


async def _serve(settings: Settings, ready: anyio.Event | None) -> None:
    witness_settings = settings.witness
    token = witness_settings.token.get_secret_value() if witness_settings.token else None
    if token is None and witness_settings.host not in ("127.0.0.1", "::1", "localhost"):
        raise ConfigError("MNEMO_WITNESS__TOKEN is required when the witness listens beyond loopback")
    sink = await open_sink(settings, enroll=False)
    try:
        witness = Witness(sink, settings)
        async with BlockingPortal() as portal:
            receiver = WitnessReceiver(
                witness_settings.host,
                witness_settings.port,
                token=token,
                max_body_bytes=witness_settings.max_body_bytes,
                portal=portal,
                on_export=witness.record,
            )
            receiver.start()
            logger.info("witness listening on %s:%d", witness_settings.host, receiver.port)
            if ready is not None:
                ready.set()
            try:
                await witness.reconcile_forever()
            finally:
                receiver.stop()
    finally:
        await sink.aclose()
