"""Zero loss, observed: re-read the transcripts, key every line as the importer does, and check the
archive holds each one (``mnemo-otel verify``, and the daemon's periodic scrub)."""

from __future__ import annotations

from .lookup import Missing
from .report import VerifyReport
from .run import VerifyOptions, run_verify

__all__ = ("Missing", "VerifyOptions", "VerifyReport", "run_verify")
