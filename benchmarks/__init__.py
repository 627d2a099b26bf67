"""Benchmarks: scripts that print figures and ratios (never timed tests, see DESIGN.md §6).

``python -m benchmarks`` runs them all; each module also runs alone (``python -m benchmarks.<name>``).
"""
