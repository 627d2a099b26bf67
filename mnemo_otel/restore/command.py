"""``mnemo-otel restore`` and ``restore --check``: the archive's files given back, or proven restorable."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..settings import Settings
from ..store.open import open_sink
from ..store.postgres import translate_errors
from .run import CheckReport, RestoreReport, check_archive, restore_files

__all__ = ("check_command", "restore_command")


async def restore_command(
    settings: Settings, selectors: Sequence[str] | None, *, host: str | None, to: Path | None
) -> RestoreReport:
    sink = await open_sink(settings, enroll=False)  # restoring on a machine does not make it a member
    try:
        async with translate_errors(), sink.connection() as conn:
            return await restore_files(conn, host or sink.host_id, selectors, to)
    finally:
        await sink.aclose()


async def check_command(settings: Settings, *, host: str | None) -> CheckReport:
    sink = await open_sink(settings, enroll=False)
    try:
        async with translate_errors(), sink.connection() as conn:
            return await check_archive(conn, host or sink.host_id)
    finally:
        await sink.aclose()
