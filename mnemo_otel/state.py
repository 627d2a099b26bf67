"""The work loop's vital signs, written by the loop and read by gauges, health checks and the watchdog.

Readers only read: they never touch the database or the disk, so a hung loop shows as stale values,
which is exactly what the heartbeat alert and the watchdog look for.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ("LoopState",)


@dataclass
class LoopState:
    started_at: float = field(default_factory=time.time)
    heartbeat: float = field(default_factory=time.time)
    heartbeat_monotonic: float = field(default_factory=time.monotonic)
    last_success: float | None = None
    db_up: bool = False
    backlog_bytes: int = 0
    backlog_since: float | None = None
    last_error: str | None = None
    fleet_members: tuple[str, ...] = ()  # hosts that must beat, as last read from the database
    # Zero loss, observed: written by the scrub and the loss ledger, loaded from the database at start.
    verify_interval: float = 0.0
    verify_last_run: float | None = None
    verify_missing: int | None = None
    verify_repaired: int = 0
    source_lost_bytes: int = 0
    source_loss_events: int = 0
    retention_days: float | None = None
    # The restore drill (at start, after each scrub): inexact files by kind; None until this process ran one.
    restore_inexact: Mapping[str, int] | None = None
    announced_files: int = 0  # files Claude Code's hooks announced for the first time (this process)

    def beat(self) -> None:
        """Called by the work loop itself, never by a timer: a stuck loop stops beating."""
        self.heartbeat = time.time()
        self.heartbeat_monotonic = time.monotonic()

    def database_reached(self) -> None:
        self.db_up = True

    def committed(self) -> None:
        """A batch is durable: the database answers and the import made progress."""
        self.db_up = True
        self.last_success = time.time()

    def failed(self, error_type: str) -> None:
        """An attempt failed and will be retried: the loop is alive, the database may not be."""
        self.db_up = False
        self.last_error = error_type
        self.beat()

    def scrubbed(self, *, at: float, missing: int, repaired: int) -> None:
        self.verify_last_run = at
        self.verify_missing = missing
        self.verify_repaired += repaired

    def drilled(self, inexact: Mapping[str, int]) -> None:
        self.restore_inexact = dict(inexact)

    def announced(self, files: int) -> None:
        self.announced_files += files

    def source_lost(self, lost_bytes: int, events: int = 1) -> None:
        self.source_lost_bytes += lost_bytes
        self.source_loss_events += events

    def backlog(self, waiting_bytes: int, since: float | None) -> None:
        self.backlog_bytes = waiting_bytes
        self.backlog_since = since

    def backlog_oldest_age(self, now: float | None = None) -> float:
        if self.backlog_since is None or self.backlog_bytes <= 0:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - self.backlog_since)
