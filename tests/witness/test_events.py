"""Which of Claude Code's events promise a transcript line, as the real client behaves (pinned end to
end by the interop tests), and that no input makes the decoder fail other than with a clear 400."""

from __future__ import annotations

import contextlib
import json
import random

import pytest
from google.protobuf import json_format

from mnemo_otel.witness.events import BadExport, decode_export, heard
from testkit.claude_events import claude_event, export


def test_prompts_and_answers_promise_their_lines_and_nothing_else_does() -> None:
    request = export(
        [
            claude_event("user_prompt", "S", message_uuid="u1", prompt_id="p1", prompt="secret text"),
            claude_event("api_request", "S", sequence=1, prompt_id="p1"),
            claude_event("assistant_response", "S", sequence=2, message_uuid="a1", query_source="sdk"),
            # a compaction's answer: its text lands in a summary line under another uuid
            claude_event("assistant_response", "S", sequence=3, message_uuid="c1", query_source="compact"),
            # a slash command: no prompt line
            claude_event("user_prompt", "S", sequence=4, prompt_id="p2", command_name="compact"),
            # an older client: no message.uuid, the prompt's id instead
            claude_event("claude_code.user_prompt", "S", sequence=5, prompt_id="p3"),
        ]
    )
    result = heard(request)
    assert [(w.event_name, w.message_uuid, w.prompt_id) for w in result.lines] == [
        ("user_prompt", "u1", None),
        ("assistant_response", "a1", None),
        ("user_prompt", None, "p3"),
    ]
    assert result.events == {"user_prompt": 3, "api_request": 1, "assistant_response": 2}
    assert result.hosts == {"laptop": "2.1.328"}
    assert all("secret" not in repr(w) for w in result.lines)


def test_only_claude_codes_events_count_and_a_host_it_does_not_name_is_unknown() -> None:
    ours = export([claude_event("user_prompt", "S", message_uuid="x")], service="mnemo-importer")
    anonymous = export([claude_event("user_prompt", "S", message_uuid="u")], host=None)
    assert heard(ours).lines == []
    result = heard(anonymous)
    assert [w.host for w in result.lines] == [None]
    assert result.hosts == {"": "2.1.328"}


def test_the_same_event_sent_twice_has_one_identity() -> None:
    event = claude_event("user_prompt", "S", message_uuid="u1")
    first, second = heard(export([event])), heard(export([event]))
    assert first.lines[0].event_id == second.lines[0].event_id


def test_otlp_json_is_read_like_protobuf_trace_ids_in_hex_included() -> None:
    request = export([claude_event("user_prompt", "S", message_uuid="u1")])
    document = json_format.MessageToDict(request)
    document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["traceId"] = (
        "5b8efff798038103d269b633813fc60c"
    )
    decoded = decode_export(json.dumps(document).encode(), "application/json")
    assert [w.message_uuid for w in heard(decoded).lines] == ["u1"]


@pytest.mark.parametrize("content_type", ["application/x-protobuf", "application/json"])
def test_fuzz__truncated_and_garbage_bodies_are_a_bad_export_or_a_harmless_one(content_type: str) -> None:
    rng = random.Random(21)
    valid = export([claude_event("user_prompt", "S", message_uuid="u1"), claude_event("api_request", "S")])
    seeds = [valid.SerializeToString(), json.dumps(json_format.MessageToDict(valid)).encode()]
    for _ in range(2000):
        seed = rng.choice(seeds)
        mutated = bytearray(seed[: rng.randrange(len(seed) + 1)])
        for _ in range(rng.randrange(4)):
            if mutated:
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        if rng.random() < 0.2:
            mutated = bytearray(rng.randbytes(rng.randrange(64)))
        with contextlib.suppress(BadExport):
            heard(decode_export(bytes(mutated), content_type))
