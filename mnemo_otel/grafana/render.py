"""Write every generated Grafana file, or report which committed ones drifted from the spec.

``out_dir`` is the repository's ``grafana/`` folder. Output is deterministic (key order as built,
multi-line strings as YAML blocks) so a diff shows exactly what a spec change did. Render-time choices
(:class:`Options`) change only the files users run; ``check`` compares against the defaults. The
committed files are the rendering with no alerting variable set; at stack start
:func:`render_alerting` renders the alerting folder again for the channels the environment configures.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from mnemo_otel.grafana import alerting, contacts, dashboards, datasources, messages, runbook, slo

__all__ = ("ALERTING_DIR", "GENERATED", "Options", "check", "render_alerting", "render_all")

_HEADER: Final = (
    "# Generated from mnemo_otel/grafana (the alert spec is spec.py). Do not edit:\n"
    "# change the spec, then run `mnemo-otel grafana render`.\n"
)


@dataclass(frozen=True, slots=True)
class Options:
    """Choices made when rendering; the committed files use the defaults."""

    runbook_url: str | None = None
    """Base of every rule's ``runbook_url`` (the anchor is appended); None: the runbook dashboard."""


GENERATED: Final[dict[str, Callable[[Options], dict[str, Any]]]] = {
    "provisioning/datasources/datasources.yaml": lambda _: datasources.datasources(),
    "provisioning/dashboards/mnemo.yaml": lambda _: datasources.dashboard_provider(),
    "provisioning/alerting/rules.yaml": lambda options: alerting.grafana_rules(options.runbook_url),
    "provisioning/alerting/contact-points.yaml": lambda _: contacts.contact_points(),
    "provisioning/alerting/policies.yaml": lambda _: contacts.policies(),
    "provisioning/alerting/templates.yaml": lambda _: messages.templates(),
    "promtool/rules.yaml": lambda _: alerting.prometheus_mirror(),
    "prometheus/recording-rules.yaml": lambda _: slo.recording_rules(),
    "dashboards/mnemo-importer.json": lambda _: dashboards.dashboard(),
    "dashboards/mnemo-runbook.json": lambda _: runbook.runbook_dashboard(),
}
"""Relative path under ``grafana/`` -> the function building that document."""

ALERTING_DIR: Final = "provisioning/alerting"
_FROM_ENV: Final[dict[str, Callable[[Mapping[str, str]], dict[str, Any]]]] = {
    "contact-points.yaml": contacts.contact_points,
    "policies.yaml": contacts.policies,
}


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings, so templates read as written; no anchors or aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def serialize(relative: str, document: dict[str, Any]) -> str:
    """The exact text written for ``relative`` (JSON for dashboards, YAML with a header otherwise)."""
    if relative.endswith(".json"):
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096)
    return _HEADER + body


def render_all(out_dir: Path, options: Options | None = None) -> list[Path]:
    """Write every generated file under ``out_dir`` and return their paths."""
    chosen = options or Options()
    written = []
    for relative, build in GENERATED.items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(serialize(relative, build(chosen)), encoding="utf-8")
        written.append(path)
    return written


def render_alerting(out_dir: Path, env: Mapping[str, str], options: Options | None = None) -> list[Path]:
    """Grafana's whole ``provisioning/alerting`` folder into ``out_dir``, contact points and policies
    for the channels ``env`` configures. Raises ``AlertingConfigError`` before writing anything.

    Other provisioning files in ``out_dir`` are removed: the folder is ours, and a file left over
    from an older release would provision what this one no longer has.
    """
    chosen = options or Options()
    documents = {}
    for relative, build in GENERATED.items():
        if relative.startswith(ALERTING_DIR + "/"):
            name = relative.removeprefix(ALERTING_DIR + "/")
            documents[name] = serialize(
                relative, _FROM_ENV[name](env) if name in _FROM_ENV else build(chosen)
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.iterdir():
        if stale.suffix in (".yaml", ".yml", ".json") and stale.name not in documents:
            stale.unlink()
    written = []
    for name, text in documents.items():
        path = out_dir / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written


def check(out_dir: Path) -> list[str]:
    """Relative paths whose committed content differs from what the spec renders (or is missing)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        render_all(fresh)
        drifted = []
        for relative in GENERATED:
            committed = out_dir / relative
            expected = (fresh / relative).read_text(encoding="utf-8")
            if not committed.is_file() or committed.read_text(encoding="utf-8") != expected:
                drifted.append(relative)
    return drifted
