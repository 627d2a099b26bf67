"""The errors mnemo-otel raises, one tree with a small ``error_type`` vocabulary.

::

    MnemoError
    ├── ConfigError            bad settings or arguments (bad database URL, unreadable path)
    ├── StoreError             the database did something unexpected
    │   ├── StoreUnavailable   cannot reach / lost the database: retry with backoff
    │   ├── BatchRejected      PostgreSQL refused the batch's data: isolate the line, quarantine it
    │   ├── CheckpointMoved    another importer committed this file first: re-plan from its checkpoint
    │   └── MigrationError     the schema cannot be brought to the version this code needs
    └── SourceError            a transcript could not be read (I/O)
        └── NotRegularSource   a ``*.jsonl`` that is a FIFO, socket or device: skipped, never opened

``error_type`` is the value used for the ``error.type`` span/metric attribute.
"""

from __future__ import annotations

__all__ = (
    "BatchRejected",
    "CheckpointMoved",
    "ConfigError",
    "MigrationError",
    "MnemoError",
    "NotRegularSource",
    "SourceError",
    "StoreError",
    "StoreUnavailable",
)


class MnemoError(Exception):
    error_type = "internal"


class ConfigError(MnemoError):
    error_type = "config"


class StoreError(MnemoError):
    error_type = "db_error"


class StoreUnavailable(StoreError):
    error_type = "db_unavailable"


class BatchRejected(StoreError):
    error_type = "db_rejected"


class CheckpointMoved(StoreError):
    error_type = "checkpoint_moved"


class MigrationError(StoreError):
    error_type = "migration"


class SourceError(MnemoError):
    error_type = "io"


class NotRegularSource(SourceError):
    error_type = "not_regular_file"
