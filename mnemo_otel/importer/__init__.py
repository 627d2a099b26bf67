"""The import loop: discover -> read -> parse -> write + checkpoint, on anyio.

``scheduler`` decides which file is imported when (scan, watch, workers, backlog, vanished files);
``file_import`` imports one file's delta; ``batches`` cuts a file's new bytes into batches.
"""

from __future__ import annotations

from .scheduler import Importer, ImportSummary

__all__ = ("ImportSummary", "Importer")
