"""mnemo-otel: exactly-once import of Claude Code transcripts into PostgreSQL, observable end to end.

The library uses the OpenTelemetry API only; the SDK is configured by the ``mnemo-otel`` command
(``mnemo_otel.telemetry.setup``), so an application embedding the importer keeps its own OTel setup.
"""

from __future__ import annotations

__version__ = "0.1.0"

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
from .settings import Settings
from .state import LoopState
from .store.postgres import PostgresSink
from .store.sink import Batch, BatchOutcome, Checkpoint, Sink

__all__ = (
    "Batch",
    "BatchOutcome",
    "BatchRejected",
    "Checkpoint",
    "CheckpointMoved",
    "ConfigError",
    "ImportSummary",
    "Importer",
    "LoopState",
    "MigrationError",
    "MnemoError",
    "PostgresSink",
    "Settings",
    "Sink",
    "SourceError",
    "StoreError",
    "StoreUnavailable",
    "__version__",
)
