"""The installed version, read from the package metadata (one source: ``pyproject.toml``).

A module of its own so that telemetry and the CLI can name the version without importing the package
``__init__`` and, through it, the importer and the database driver.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ("__version__",)

try:
    __version__ = version("mnemo-otel")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
