"""Deriving session and exchange updates from the entries a batch newly stored.

Only newly stored entries are folded in, inside the batch's transaction, so replaying a file (after a
truncation, a crash or by a second importer) never counts or appends anything twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..model import Entry, Role

__all__ = ("ExchangeDelta", "SessionDelta", "fold")


@dataclass(slots=True)
class ExchangeDelta:
    session_id: str
    prompt_uuid: str
    prompt_text: str = ""
    assistant_parts: list[str] = field(default_factory=list)
    entry_count: int = 0
    started_at: datetime | None = None
    last_entry_at: datetime | None = None
    last_entry_uuid: str | None = None


@dataclass(slots=True)
class SessionDelta:
    session_id: str
    first_entry_at: datetime | None = None
    last_entry_at: datetime | None = None
    entry_count: int = 0


@dataclass(slots=True)
class FoldResult:
    exchanges: list[ExchangeDelta]
    sessions: list[SessionDelta]
    open_exchange: tuple[str, str] | None


def fold(entries: list[Entry], stored: set[int], open_exchange: tuple[str, str] | None) -> FoldResult:
    """Fold entries (file order) into exchange and session deltas.

    :param stored: indexes into ``entries`` of the lines this batch newly stored.
    :param open_exchange: ``(session_id, prompt_uuid)`` the file's previous batch left open.
    """
    exchanges: dict[tuple[str, str], ExchangeDelta] = {}
    sessions: dict[str, SessionDelta] = {}
    for index, entry in enumerate(entries):
        is_new = index in stored
        if entry.role is Role.PROMPT and entry.uuid and entry.session_id:
            open_exchange = (entry.session_id, entry.uuid)
            if is_new:
                delta = _exchange(exchanges, open_exchange)
                delta.prompt_text = entry.text
                delta.started_at = entry.timestamp
                _touch(delta, entry)
        elif is_new and open_exchange is not None and entry.session_id == open_exchange[0]:
            delta = _exchange(exchanges, open_exchange)
            if entry.role is Role.ASSISTANT and entry.text:
                delta.assistant_parts.append(entry.text)
            _touch(delta, entry)
        if is_new and entry.session_id:
            _count_session(sessions, entry)
    # Sorted: concurrent transactions then lock shared session/exchange rows in the same order.
    return FoldResult(
        [exchanges[key] for key in sorted(exchanges)],
        [sessions[key] for key in sorted(sessions)],
        open_exchange,
    )


def _exchange(exchanges: dict[tuple[str, str], ExchangeDelta], key: tuple[str, str]) -> ExchangeDelta:
    delta = exchanges.get(key)
    if delta is None:
        delta = exchanges[key] = ExchangeDelta(session_id=key[0], prompt_uuid=key[1])
    return delta


def _touch(delta: ExchangeDelta, entry: Entry) -> None:
    delta.entry_count += 1
    if entry.uuid:
        delta.last_entry_uuid = entry.uuid
    stamp = entry.timestamp
    if stamp is not None and (delta.last_entry_at is None or stamp > delta.last_entry_at):
        delta.last_entry_at = stamp


def _count_session(sessions: dict[str, SessionDelta], entry: Entry) -> None:
    assert entry.session_id is not None
    delta = sessions.get(entry.session_id)
    if delta is None:
        delta = sessions[entry.session_id] = SessionDelta(entry.session_id)
    delta.entry_count += 1
    stamp = entry.timestamp
    if stamp is not None:
        if delta.first_entry_at is None or stamp < delta.first_entry_at:
            delta.first_entry_at = stamp
        if delta.last_entry_at is None or stamp > delta.last_entry_at:
            delta.last_entry_at = stamp
