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

if TYPE_CHECKING:
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
    from .importer import Importer, ImportSummary
    from .model import (
        BadLine,
        Batch,
        BatchOutcome,
        Checkpoint,
        Entry,
        FileIdentity,
        GroupSink,
        ImportObserver,
        Quarantine,
        Sink,
        TranscriptFile,
    )
    from .settings import Settings
    from .state import LoopState
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
    "GroupSink",
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
    # Nothing is loaded with the package: `mnemo-otel hook` runs at every session start and stop,
    # and the package's metadata (the version) alone costs more than the hook's own work.
    "__version__": "._version",
    **dict.fromkeys(
        (
            *("BatchRejected", "CheckpointMoved", "ConfigError", "MigrationError", "MnemoError"),
            *("SourceError", "StoreError", "StoreUnavailable"),
        ),
        ".errors",
    ),
    **dict.fromkeys(
        (
            *("BadLine", "Batch", "BatchOutcome", "Checkpoint", "Entry", "FileIdentity"),
            *("GroupSink", "ImportObserver", "Quarantine", "Sink", "TranscriptFile"),
        ),
        ".model",
    ),
    "LoopState": ".state",
    "Importer": ".importer",
    "ImportSummary": ".importer",
    "PostgresSink": ".store.postgres",
    "Settings": ".settings",  # pydantic: too heavy for the health probe and verify's worker processes
}


def __getattr__(name: str) -> Any:
    """Load each name (the vocabulary, the importer, the sink, the settings) only when asked for."""
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
