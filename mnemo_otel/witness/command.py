"""``mnemo-otel witness status``: what Claude Code said it wrote that the archive still lacks."""

from __future__ import annotations

from ..announce.store import announced_status
from ..settings import Settings
from ..store.open import open_sink
from ..store.postgres import translate_errors
from .store import WitnessStatus, reconcile, status

__all__ = ("status_command",)


async def status_command(settings: Settings, *, host: str | None) -> WitnessStatus:
    sink = await open_sink(settings, enroll=False)
    try:
        async with translate_errors(), sink.connection() as conn:
            await reconcile(conn)  # the answer is as of now, not as of the service's last pass
            report = await status(conn, settings.witness.grace_seconds, host)
            report.announced = await announced_status(conn, settings.witness.grace_seconds, host)
            return report
    finally:
        await sink.aclose()
