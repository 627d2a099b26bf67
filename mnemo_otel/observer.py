"""What the import loop reports as it works: a narrow seam between the loop and telemetry.

The loop calls these hooks; ``telemetry.instruments`` implements them with the OpenTelemetry API. The
null observer lets the library run (and be tested) with no telemetry at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager as contextlib_cm
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._batches import FileRead
    from .store.sink import BatchOutcome
    from .transcripts.discovery import TranscriptFile

__all__ = ("ImportObserver", "ImportSpan", "NullObserver")


class ImportSpan(Protocol):
    @property
    def trace_id(self) -> str | None: ...

    def finish(self, outcome: BatchOutcome) -> None: ...


class ImportObserver(Protocol):
    def import_span(self, transcript: TranscriptFile, read: FileRead) -> contextlib_cm[ImportSpan]: ...

    def committed(
        self, transcript: TranscriptFile, read: FileRead, outcome: BatchOutcome, seconds: float
    ) -> None: ...

    def quarantined(self, kind: str) -> None: ...

    def failure(self, error_type: str) -> None: ...


class _NullSpan:
    trace_id: str | None = None

    def finish(self, outcome: BatchOutcome) -> None:
        return None


class NullObserver:
    @contextmanager
    def import_span(self, transcript: TranscriptFile, read: FileRead) -> Iterator[ImportSpan]:
        yield _NullSpan()

    def committed(
        self, transcript: TranscriptFile, read: FileRead, outcome: BatchOutcome, seconds: float
    ) -> None:
        return None

    def quarantined(self, kind: str) -> None:
        return None

    def failure(self, error_type: str) -> None:
        return None
