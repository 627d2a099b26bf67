"""docker-compose.yml as Docker would read it, for tests that cannot run Docker.

Compose's variable interpolation (``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
``${VAR:?error}``, ``${VAR?error}``, ``$$``) applied to a service's ``environment``, and the
container's command from the Dockerfile's ``ENTRYPOINT``/``CMD`` unless compose overrides it. With
these, a test runs a service's real command natively with the environment the container would get.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from . import REPO_ROOT

__all__ = ("COMPOSE_FILE", "MissingVariable", "container_command", "interpolate", "service_environment")

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(ValueError):
    """A ``${VAR:?message}`` whose variable is unset (or empty): compose refuses to start."""


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with compose's interpolation applied; raises :class:`MissingVariable` like compose."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        value = variables.get(name)
        op, arg = match["op"], match["arg"] or ""
        empty_counts = op is not None and op.startswith(":")
        missing = value is None or (empty_counts and value == "")
        if op and op.endswith("-"):
            return interpolate(arg, variables) if missing else str(value)
        if op and op.endswith("?"):
            if missing:
                raise MissingVariable(f"{name}: {arg}")
            return str(value)
        return "" if value is None else value

    return _VARIABLE.sub(replace, text)


def _services(compose_file: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(compose_file.read_text(encoding="utf-8"))
    services: dict[str, Any] = data["services"]
    return services


def service_environment(
    service: str, variables: Mapping[str, str], compose_file: Path = COMPOSE_FILE
) -> dict[str, str]:
    """The ``environment`` compose gives ``service``, interpolated with ``variables`` (the .env)."""
    raw = _services(compose_file)[service].get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {key: interpolate(str(value), variables) for key, value in raw.items()}


def _exec_form(dockerfile_text: str, instruction: str) -> list[str]:
    found = re.findall(rf"^{instruction} (\[.*\])\s*$", dockerfile_text, flags=re.MULTILINE)
    if not found:
        return []
    value: list[str] = json.loads(found[-1])  # the final stage's instruction wins
    return value


def container_command(service: str, compose_file: Path = COMPOSE_FILE) -> list[str]:
    """ENTRYPOINT + CMD of the service's built image, with compose's ``entrypoint``/``command``."""
    spec = _services(compose_file)[service]
    build = spec["build"]
    dockerfile = compose_file.parent / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
    text = dockerfile.read_text(encoding="utf-8")
    entrypoint = spec.get("entrypoint", _exec_form(text, "ENTRYPOINT"))
    # Docker drops the image's CMD when compose replaces the entrypoint.
    default_command = [] if "entrypoint" in spec else _exec_form(text, "CMD")
    command = spec.get("command", default_command)
    return [*entrypoint, *command]
