"""Stopping a long-running command cleanly on SIGTERM or SIGINT (``docker stop``, Ctrl-C, systemd)."""

from __future__ import annotations

import logging
import signal

import anyio

__all__ = ("cancel_on_signal",)

logger = logging.getLogger("mnemo_otel")


async def cancel_on_signal(scope: anyio.CancelScope, *, stopping: str) -> None:
    """Cancel ``scope`` at the first SIGTERM or SIGINT; ``stopping`` says what happens next, in the log."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            logger.info("received %s; %s", signal.Signals(signum).name, stopping)
            scope.cancel()
            return
