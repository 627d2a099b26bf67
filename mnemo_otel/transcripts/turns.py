"""Which lines open an exchange (a real user prompt) and which text belongs to it.

Claude Code writes tool results, meta caveats, slash-command echoes and compaction summaries as
``type: "user"`` lines; counting those as prompts is the bug that split conversations in the previous
system, so only a human-typed message opens an exchange. A subagent's transcript (``isSidechain``)
starts with the task the main agent handed it: not typed by a human, so not a prompt either. Nor is
the notice the client itself writes as a user line when a background task (an async subagent) ends:
it says where it came from (``origin``, ``promptSource: "system"``), and older clients' notices are
known by their ``<task-notification>`` text.
"""

from __future__ import annotations

from typing import Any

from ..model import Role

__all__ = ("classify",)

_PSEUDO_PROMPT_PREFIXES = (
    "<command-name>",
    "<command-message>",
    "<command-args>",
    "<local-command-stdout>",
    "<local-command-stderr>",
    "<bash-input>",
    "<bash-stdout>",
    "<bash-stderr>",
    "<system-reminder>",
    "<task-notification>",
    "[Request interrupted by user",
    "Caveat: The messages below were generated",
)


def classify(obj: dict[str, Any]) -> tuple[Role, str]:
    """Return the line's role in an exchange and the human-readable text it contributes."""
    kind = obj.get("type")
    message = obj.get("message")
    if not isinstance(message, dict):
        return Role.OTHER, ""
    content = message.get("content")
    if kind == "assistant":
        return Role.ASSISTANT, _text_blocks(content)
    if kind != "user" or obj.get("isMeta") or obj.get("isCompactSummary") or obj.get("isSidechain") is True:
        return Role.OTHER, ""
    if obj.get("promptSource") == "system" or isinstance(obj.get("origin"), dict):
        return Role.OTHER, ""  # written by the client itself (e.g. a task notification), not typed
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        if any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
            return Role.OTHER, ""
        text = _text_blocks(content)
    else:
        return Role.OTHER, ""
    stripped = text.lstrip()
    if not stripped or stripped.startswith(_PSEUDO_PROMPT_PREFIXES):
        return Role.OTHER, ""
    return Role.PROMPT, text


def _text_blocks(content: object) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [
        b["text"]
        for b in content
        if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
    ]
    return "\n".join(parts)
