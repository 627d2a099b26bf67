"""Helpers shared by the Grafana tests: run promtool on expressions, walk generated documents."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

GRAFANA_MACROS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def without_macros(expr: str) -> str:
    """Grafana's range macros replaced by durations, so promtool can parse the expression."""
    for macro, value in GRAFANA_MACROS.items():
        expr = expr.replace(macro, value)
    return expr


def check_expressions(promtool: str, exprs: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Parse every expression with promtool by wrapping each one in a recording rule."""
    rules = [{"record": f"check:expr_{i}", "expr": expr} for i, expr in enumerate(exprs)]
    path = tmp_path / "expressions.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "parse", "rules": rules}]}), encoding="utf-8")
    return subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )


def strings(node: Any) -> Iterator[str]:
    """Every string value in a loaded YAML/JSON document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))
