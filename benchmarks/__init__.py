"""Benchmarks: scripts that print figures and ratios (never timed tests).

``python -m benchmarks`` runs them all; each module also runs alone (``python -m benchmarks.<name>``).
"""
