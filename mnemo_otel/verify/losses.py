"""The daemon's ledger of source losses: counted when noticed, recorded in the database when it answers.

The importer calls the ledger (from a worker thread) when complete lines vanish before their commit.
The bytes are counted at once when the checkpoint is known (the ``source.lost`` counter reads the
loop state), the event is journaled on local disk (``loss_journal.py``), and it is written to
``mnemo.source_losses`` by :meth:`LossLedger.flush`, which the maintenance task retries until the
database answers. At start-up the state is loaded from that table plus the journal's events the
table does not hold yet, so neither a restart nor a crash while the database is down forgets one.
"""

from __future__ import annotations

import logging
import threading

from ..errors import StoreError
from ..model import SourceLoss
from ..state import LoopState
from ..store import ledger
from ..store.postgres import PostgresSink, translate_errors
from .loss_journal import LossJournal

__all__ = ("LossLedger",)

logger = logging.getLogger("mnemo_otel.importer")


class LossLedger:
    def __init__(
        self, sink: PostgresSink, host_id: str, state: LoopState, journal: LossJournal | None = None
    ) -> None:
        self._sink = sink
        self._host_id = host_id
        self._state = state
        self._journal = journal or LossJournal(None)
        self._pending: list[SourceLoss] = []
        self._lock = threading.Lock()

    def __call__(self, loss: SourceLoss) -> None:
        """``on_loss`` for the importer; may run in a worker thread, never blocks on the database."""
        if loss.committed is not None:
            self._counted(loss, loss.seen_end - loss.committed)
        with self._lock:
            self._pending.append(loss)
            self._journal.append(loss)

    async def load(self) -> None:
        """This host's recorded total, and the journal's events the database does not hold yet (a
        previous run noticed them while it was down), so the counter and health keep showing all."""
        journaled = self._journal.read()
        async with translate_errors(), self._sink.connection() as conn:
            totals = await ledger.loss_totals(conn, self._host_id)
            recorded = await ledger.recorded_events(conn, [e.event_id for e in journaled])
        self._state.source_lost(totals.lost_bytes, totals.events)
        waiting = [e for e in journaled if e.event_id not in recorded]
        for loss in waiting:
            if loss.committed is not None:
                self._counted(loss, loss.seen_end - loss.committed)
        with self._lock:
            self._pending[:0] = waiting
            self._journal.rewrite(self._pending)

    async def flush(self) -> None:
        """Write the pending events; on a database error the rest waits for the next call."""
        with self._lock:
            pending, self._pending = self._pending, []
        count = len(pending)
        try:
            while pending:
                await self._record(pending[0])
                pending.pop(0)
        except StoreError:
            with self._lock:
                self._pending[:0] = pending
            raise
        finally:
            if len(pending) < count:  # some were recorded: the journal keeps only the others
                with self._lock:
                    self._journal.rewrite(self._pending)

    async def _record(self, loss: SourceLoss) -> None:
        async with translate_errors(), self._sink.connection() as conn:
            start = loss.committed
            if start is None:  # never learned here: the checkpoint the database holds
                start = await ledger.checkpoint_offset(conn, self._host_id, loss.path)
            lost = loss.seen_end - start
            if lost > 0:
                await ledger.record_loss(
                    conn, self._host_id, loss.path, loss.reason, lost, loss.detected_at, loss.event_id
                )
        if loss.committed is None:
            self._counted(loss, lost)

    def _counted(self, loss: SourceLoss, lost: int) -> None:
        if lost <= 0:
            return
        self._state.source_lost(lost)
        logger.warning(
            "transcript %s before %d bytes of its complete lines were imported: they are lost",
            loss.reason,
            lost,
            extra={"mnemo.transcript.path": loss.path, "mnemo.bytes": lost},
        )
