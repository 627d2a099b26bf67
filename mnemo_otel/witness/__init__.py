"""A second witness of zero loss: Claude Code's own telemetry says which lines it wrote."""
