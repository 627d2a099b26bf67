"""Loop-stall watchdog and systemd notification.

A thread, not a coroutine: when the event loop itself is blocked, a coroutine would never run. If the
work loop has not beaten for ``timeout`` seconds, every thread's stack goes to the log and the process
exits non-zero, so Docker's ``restart:`` or systemd brings it back. Under systemd (``Type=notify``,
``WatchdogSec=``) the same thread sends ``READY=1`` and keeps sending ``WATCHDOG=1`` only while the
loop is fresh, so systemd's own watchdog agrees.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping

from .state import LoopState

__all__ = ("EXIT_STALLED", "Watchdog", "sd_notify")

logger = logging.getLogger(__name__)

EXIT_STALLED = 70


def sd_notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send one sd_notify datagram if ``NOTIFY_SOCKET`` is set (a few lines; no library needed)."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(message.encode())
        except OSError:
            return False
    return True


def _dump_and_exit() -> None:
    logger.critical("work loop stalled: dumping all thread stacks and exiting for a restart")
    for handler in logging.getLogger().handlers:
        handler.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    os._exit(EXIT_STALLED)


class Watchdog:
    """Checks the loop's monotonic heartbeat every ``interval`` seconds from its own thread."""

    def __init__(
        self,
        state: LoopState,
        timeout: float,
        *,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_stall: Callable[[], None] = _dump_and_exit,
        notify: Callable[[str], bool] = sd_notify,
    ) -> None:
        self._state = state
        self._timeout = timeout
        self._interval = interval if interval is not None else max(0.1, min(5.0, timeout / 4))
        self._clock = clock
        self._on_stall = on_stall
        self._notify = notify
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mnemo-watchdog", daemon=True)

    def start(self) -> None:
        self._notify("READY=1")
        self._thread.start()

    def stop(self) -> None:
        self._notify("STOPPING=1")
        self._stop.set()
        self._thread.join(timeout=5)

    def check(self) -> bool:
        """One look: ``False`` (and the stall action) when the loop is overdue."""
        silent_for = self._clock() - self._state.heartbeat_monotonic
        if silent_for > self._timeout:
            logger.critical(
                "no heartbeat from the work loop for %.1fs (limit %.0fs)", silent_for, self._timeout
            )
            self._on_stall()
            return False
        self._notify("WATCHDOG=1")
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if not self.check():
                return
