"""Restore: archived transcripts written back to disk byte for byte (``mnemo-otel restore``)."""
