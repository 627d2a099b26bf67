"""Opening the archive as every command does: the configured database, or the embedded one.

Below the commands that need it (the daemon, ``verify``, ``restore``), so none of them reaches up
into another's wiring for it.
"""

from __future__ import annotations

import anyio
import anyio.to_thread

from ..embedded import start_embedded_postgres
from ..errors import ConfigError
from ..settings import Settings
from .postgres import PostgresSink

__all__ = ("open_sink",)


async def open_sink(
    settings: Settings, *, migrate: bool = True, enroll: bool = True, pool_size: int | None = None
) -> PostgresSink:
    password = settings.database_password
    if settings.database_url is not None:
        dsn = settings.database_url.get_secret_value()
    elif password is not None:
        raise ConfigError("MNEMO_DATABASE_PASSWORD is set but MNEMO_DATABASE_URL is not")
    else:
        dsn = await anyio.to_thread.run_sync(start_embedded_postgres, settings.data_dir)
    return await PostgresSink.open(
        dsn,
        password=None if password is None else password.get_secret_value(),
        host_id=settings.host_id,
        migrate=migrate,
        enroll=enroll,
        pool_size=pool_size or settings.imports.concurrent_files,
    )
