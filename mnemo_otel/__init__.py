"""mnemo-otel: exactly-once import of Claude Code transcripts into PostgreSQL, observable end to end.

The library uses the OpenTelemetry API only; the SDK is configured by the ``mnemo-otel`` command
(``mnemo_otel.telemetry.setup``), so an application embedding the importer keeps its own OTel setup.

The vocabulary (``Entry``, ``BadLine``, ``Batch``, ``Sink``...) is what an application needs to write
its own sink. The importer and the PostgreSQL sink load on first use, so the light commands (health
probe, Grafana generator) never pay for the database driver or the file watcher.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    BatchRejected,
    CheckpointMoved,
    ConfigError,
    MigrationError,
    MnemoError,
    SourceError,
    StoreError,
    StoreUnavailable,
)
from .model import (
    BadLine,
    Batch,
    BatchOutcome,
    Checkpoint,
    Entry,
    FileIdentity,
    ImportObserver,
    Quarantine,
    Sink,
    TranscriptFile,
)
from .state import LoopState

if TYPE_CHECKING:
    from .importer import Importer, ImportSummary
    from .settings import Settings
    from .store.postgres import PostgresSink

__all__ = (
    "BadLine",
    "Batch",
    "BatchOutcome",
    "BatchRejected",
    "Checkpoint",
    "CheckpointMoved",
    "ConfigError",
    "Entry",
    "FileIdentity",
    "ImportObserver",
    "ImportSummary",
    "Importer",
    "LoopState",
    "MigrationError",
    "MnemoError",
    "PostgresSink",
    "Quarantine",
    "Settings",
    "Sink",
    "SourceError",
    "StoreError",
    "StoreUnavailable",
    "TranscriptFile",
    "__version__",
)

_LAZY = {
    "Importer": ".importer",
    "ImportSummary": ".importer",
    "PostgresSink": ".store.postgres",
    "Settings": ".settings",  # pydantic: too heavy for the health probe and verify's worker processes
}


def __getattr__(name: str) -> Any:
    """Load the importer, the PostgreSQL sink and the settings only when asked for."""
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
