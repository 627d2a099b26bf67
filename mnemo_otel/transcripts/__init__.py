"""Reading transcript files: discovery, streaming lines, parsing. No database, no telemetry SDK."""
