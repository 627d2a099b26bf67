"""Grafana's provisioning interpolation, re-stated: split on ``$$``, ``os.ExpandEnv`` each part.

Mirrors ``pkg/services/provisioning/values/values.go: interpolateValue`` and Go's ``os.Expand``
(``$name``, ``${name}``, one-character special names; a lone ``$`` stays).
"""

from __future__ import annotations

import string

_NAME = set(string.ascii_letters + string.digits + "_")
_SPECIAL = set("*#$@!?-0123456789")


def _expand(value: str, env: dict[str, str]) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] != "$" or i + 1 >= len(value):
            out.append(value[i])
            i += 1
            continue
        rest = value[i + 1 :]
        if rest[0] == "{":
            end = rest.find("}")
            if end < 0:  # unterminated: Go eats "${"
                i += 2
                continue
            if end == 1:  # "${}": Go eats it
                i += 3
                continue
            out.append(env.get(rest[1:end], ""))
            i += end + 2
        elif rest[0] in _SPECIAL:
            out.append(env.get(rest[0], ""))
            i += 2
        else:
            length = 0
            while length < len(rest) and rest[length] in _NAME:
                length += 1
            if length == 0:
                out.append("$")
                i += 1
            else:
                out.append(env.get(rest[:length], ""))
                i += 1 + length
    return "".join(out)


def interpolate(value: str, env: dict[str, str]) -> str:
    """The string Grafana stores after loading ``value`` from a provisioning file."""
    return "$".join(_expand(part, env) for part in value.split("$$"))
