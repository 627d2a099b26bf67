"""Grafana's alert texts through the template engines Grafana itself uses, not an imitation of them.

- Annotations: ``testkit/annotation_render`` (Go's text/template with the Prometheus template
  functions, missingkey=invalid, ``$labels``/``$values``/``$value`` bound as Grafana binds them).
- Notifications: Alertmanager's own engine, ``amtool template render``, on Alertmanager's data.
  Grafana's data has a few more fields (``PanelURL``, ``DashboardURL``, ``SilenceURL``, ...) that
  Alertmanager's has not; templates reading them are replaced by stand-ins the caller gives.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testkit import REPO_ROOT

__all__ = (
    "ANNOTATION_BUILD",
    "AnnotationCase",
    "Expansion",
    "annotation_renderer",
    "expand_annotations",
    "render_notification",
)

ANNOTATION_BUILD = REPO_ROOT / "testkit" / "annotation_render" / "build.sh"


@functools.cache
def annotation_renderer() -> Path:
    """Path of the built expander; builds it on first use (cached by its sources' digest)."""
    result = subprocess.run(
        ["bash", str(ANNOTATION_BUILD)], cwd=REPO_ROOT, check=True, capture_output=True, text=True
    )
    lines = result.stdout.strip().splitlines()
    if not lines or not os.access(lines[-1], os.X_OK):
        raise RuntimeError(f"annotation_render/build.sh gave no executable; stderr:\n{result.stderr}")
    return Path(lines[-1])


@dataclass(frozen=True, slots=True)
class AnnotationCase:
    """One evaluation as the annotation templates see it. ``values`` maps a refId to its series'
    labels and value (None: a refId without a number); empty on an evaluation error or NoData."""

    id: str
    annotations: Mapping[str, str]
    labels: Mapping[str, str]
    values: Mapping[str, tuple[Mapping[str, str], float | None]] = field(default_factory=dict)
    value: str = ""


@dataclass(frozen=True, slots=True)
class Expansion:
    """An expanded annotation; on failure ``text`` is the template itself, as Grafana keeps it."""

    text: str
    error: str | None


def expand_annotations(
    cases: Sequence[AnnotationCase], *, external_url: str, evaluated_at_ms: int
) -> dict[str, dict[str, Expansion]]:
    """Every case's annotations expanded, by case id then annotation name (one process for all)."""
    request = {
        "external_url": external_url,
        "evaluated_at_ms": evaluated_at_ms,
        "cases": [
            {
                "id": case.id,
                "annotations": dict(case.annotations),
                "labels": dict(case.labels),
                "values": {ref: {"labels": dict(lb), "value": v} for ref, (lb, v) in case.values.items()},
                "value": case.value,
            }
            for case in cases
        ],
    }
    result = subprocess.run(
        [str(annotation_renderer())], input=json.dumps(request), capture_output=True, text=True, check=True
    )
    return {
        outcome["id"]: {
            name: Expansion(expanded["text"], expanded.get("error"))
            for name, expanded in outcome["annotations"].items()
        }
        for outcome in json.loads(result.stdout)
    }


def render_notification(templates: Sequence[str], data: Mapping[str, Any], text: str) -> str:
    """``text`` rendered by amtool against ``data`` (Alertmanager's ``template.Data`` as JSON), with
    ``templates`` parsed first, in order (a later ``define`` of a name replaces an earlier one)."""
    with tempfile.TemporaryDirectory(prefix="mnemo-amtool-") as tmp:
        folder = Path(tmp)
        globs = []
        for index, template in enumerate(templates):
            path = folder / f"{index:02d}.tmpl"
            path.write_text(template, encoding="utf-8")
            globs.append(f"--template.glob={path}")
        data_file = folder / "data.json"
        data_file.write_text(json.dumps(data), encoding="utf-8")
        result = subprocess.run(
            [
                "amtool",
                "template",
                "render",
                *globs,
                f"--template.data={data_file}",
                f"--template.text={text}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"amtool template render failed: {result.stderr.strip()}")
    return result.stdout
