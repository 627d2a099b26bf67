"""What the import loop reports as it works: a narrow seam between the loop and telemetry.

The loop calls these hooks; ``telemetry.instruments.ImportTelemetry`` implements them with the
OpenTelemetry API. The null observer lets the library run, and be tested, with no telemetry at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._batches import FileRead
    from .store.sink import BatchOutcome
    from .transcripts.discovery import TranscriptFile

__all__ = ("FileImportSpan", "ImportObserver", "NullObserver")


class FileImportSpan(Protocol):
    """The trace of one file delta; ``trace_id`` (hex) is stored on the rows it writes."""

    trace_id: str | None

    def child(self, name: str) -> AbstractContextManager[Any]: ...

    def add_batch(self, read: FileRead, outcome: BatchOutcome) -> None: ...


class ImportObserver(Protocol):
    def file_import(self, transcript: TranscriptFile) -> AbstractContextManager[FileImportSpan]: ...

    def committed(
        self, transcript: TranscriptFile, read: FileRead, outcome: BatchOutcome, seconds: float
    ) -> None: ...

    def quarantined(self, kind: str) -> None: ...

    def failure(self, error_type: str) -> None: ...


class _NullSpan:
    trace_id: str | None = None

    def child(self, name: str) -> AbstractContextManager[None]:
        return nullcontext()

    def add_batch(self, read: FileRead, outcome: BatchOutcome) -> None:
        return None


class NullObserver:
    @contextmanager
    def file_import(self, transcript: TranscriptFile) -> Iterator[FileImportSpan]:
        yield _NullSpan()

    def committed(
        self, transcript: TranscriptFile, read: FileRead, outcome: BatchOutcome, seconds: float
    ) -> None:
        return None

    def quarantined(self, kind: str) -> None:
        return None

    def failure(self, error_type: str) -> None:
        return None
