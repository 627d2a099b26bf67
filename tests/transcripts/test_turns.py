from __future__ import annotations

import pytest

from mnemo_otel.model import Role
from mnemo_otel.transcripts.turns import classify


@pytest.mark.parametrize(
    ("obj", "role"),
    [
        ({"type": "user", "message": {"role": "user", "content": "fix the bug"}}, Role.PROMPT),
        (
            {"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": "look"}]}},
            Role.PROMPT,
        ),
        (
            {
                "type": "user",
                "message": {"content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]},
            },
            Role.OTHER,
        ),
        (
            {
                "type": "user",
                "isMeta": True,
                "message": {"content": "Caveat: The messages below were generated"},
            },
            Role.OTHER,
        ),
        (
            {
                "type": "user",
                "isCompactSummary": True,
                "message": {"content": "This session is being continued"},
            },
            Role.OTHER,
        ),
        ({"type": "user", "message": {"content": "<command-name>/clear</command-name>"}}, Role.OTHER),
        ({"type": "user", "isSidechain": True, "message": {"content": "search the repo for x"}}, Role.OTHER),
        (
            {"type": "user", "isSidechain": False, "message": {"content": "search the repo for x"}},
            Role.PROMPT,
        ),
        (
            {"type": "user", "message": {"content": "<local-command-stdout>x</local-command-stdout>"}},
            Role.OTHER,
        ),
        ({"type": "user", "message": {"content": "[Request interrupted by user]"}}, Role.OTHER),
        (  # the client's own notice that a background subagent ended (Claude Code 2.1.328)
            {
                "type": "user",
                "origin": {"kind": "task-notification", "producer": "session-task"},
                "promptSource": "system",
                "message": {"content": "<task-notification>\n<task-id>a1</task-id>"},
            },
            Role.OTHER,
        ),
        ({"type": "user", "promptSource": "system", "message": {"content": "a notice"}}, Role.OTHER),
        ({"type": "user", "message": {"content": "<task-notification>done</task-notification>"}}, Role.OTHER),
        ({"type": "user", "promptSource": "sdk", "message": {"content": "typed in -p"}}, Role.PROMPT),
        ({"type": "assistant", "message": {"content": [{"type": "text", "text": "done"}]}}, Role.ASSISTANT),
        ({"type": "summary", "summary": "s"}, Role.OTHER),
        ({"type": "system", "subtype": "compact_boundary"}, Role.OTHER),
    ],
)
def test_classify__only_human_typed_messages_open_an_exchange(obj: dict[str, object], role: Role) -> None:
    assert classify(obj)[0] is role


def test_classify__assistant_text_joins_text_blocks_only() -> None:
    obj = {
        "type": "assistant",
        "message": {
            "content": [
                {"type": "thinking", "thinking": "hm"},
                {"type": "text", "text": "a"},
                {"type": "text", "text": "b"},
            ]
        },
    }
    assert classify(obj) == (Role.ASSISTANT, "a\nb")
