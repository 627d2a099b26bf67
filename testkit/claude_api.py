"""A loopback fake of the Anthropic Messages API, so the real Claude Code CLI runs offline in tests.

The client streams every answer (server-sent events). A test scripts the main conversation's replies
in order; the client's side requests (titles, topic checks, compaction summaries) are told apart by
their shape and answered with plain text, so a script never has to guess how many the client makes.
Every request body is kept, so a test can read which history the client sent.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union

__all__ = (
    "ApiError",
    "BashCall",
    "FakeMessagesApi",
    "Reply",
    "Stall",
    "SubagentCall",
    "Text",
    "running_fake_api",
)

MODEL = "claude-sonnet-4-5-20250929"


@dataclass(frozen=True)
class Text:
    """An assistant turn that only says something, ending the client's turn."""

    text: str


@dataclass(frozen=True)
class BashCall:
    """An assistant turn that asks the client to run one shell command (the client calls back)."""

    command: str
    description: str = "run a command for the test"


@dataclass(frozen=True)
class SubagentCall:
    """An assistant turn that starts a subagent (the Agent tool) and scripts the subagent's own turns.

    The client runs the subagent beside the main conversation, so their requests interleave in any
    order: the subagent's are told apart by its prompt in their user text, and answered from `replies`.
    """

    prompt: str
    replies: tuple[Reply, ...] = ()
    description: str = "a subagent for the test"
    subagent_type: str = "general-purpose"


@dataclass(frozen=True)
class ApiError:
    """An HTTP error instead of a stream, served `times` times in a row: the client retries a request
    a few times (also on a 400, with other parameters) before it gives up. `clear` drops the rest."""

    status: int = 400
    message: str = "scripted error"
    times: int = 1


@dataclass(frozen=True)
class Stall:
    """A stream that starts, then sends nothing for `seconds` (the client is mid-answer meanwhile)."""

    seconds: float
    then: Text = field(default_factory=lambda: Text("after the stall"))


Reply = Union[Text, BashCall, SubagentCall, ApiError, Stall]  # noqa: UP007 (a forward reference)


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    body: dict[str, Any]
    scripted: bool

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages = self.body.get("messages")
        return messages if isinstance(messages, list) else []


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _content_blocks(reply: Text | BashCall | SubagentCall, tool_ids: Iterator[int]) -> list[dict[str, Any]]:
    if isinstance(reply, Text):
        return [{"type": "text", "text": reply.text}]
    if isinstance(reply, BashCall):
        name, arguments = "Bash", {"command": reply.command, "description": reply.description}
    else:
        name = "Agent"
        arguments = {
            "description": reply.description,
            "prompt": reply.prompt,
            "subagent_type": reply.subagent_type,
        }
    return [{"type": "tool_use", "id": f"toolu_{next(tool_ids):024d}", "name": name, "input": arguments}]


def _stream_events(message_id: str, blocks: list[dict[str, Any]]) -> Iterator[bytes]:
    stop_reason = "tool_use" if any(block["type"] == "tool_use" for block in blocks) else "end_turn"
    yield _sse(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 12, "output_tokens": 1},
            },
        },
    )
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            yield _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            start = {**block, "input": {}}
            yield _sse(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
            )
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
    yield _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 7},
        },
    )
    yield _sse("message_stop", {"type": "message_stop"})


def is_side_request(body: dict[str, Any]) -> bool:
    """Whether a request is the client's own chore rather than a turn of a conversation.

    A conversation's requests offer tools; the client's titles and topic checks do not.
    """
    return not body.get("tools")


def user_texts(body: dict[str, Any]) -> Iterator[str]:
    """The text a request's user messages carry (tool results excluded)."""
    for message in body.get("messages") or ():
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            yield content
        elif isinstance(content, list):
            for block in content:
                if (
                    isinstance(block, dict)
                    and block.get("type") == "text"
                    and isinstance(block.get("text"), str)
                ):
                    yield block["text"]


class FakeMessagesApi:
    """Answers `POST /v1/messages` from a script; serves on 127.0.0.1 only."""

    def __init__(self, script: Sequence[Reply] = (), side_text: str = "Side answer.") -> None:
        self.requests: list[RecordedRequest] = []
        self.side_text = side_text
        self._script: list[Reply] = list(script)
        self._routes: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                api._answer(self)

            def do_GET(self) -> None:
                api._not_found(self)

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def push(self, *replies: Reply) -> None:
        """Queue the next replies of the main conversation."""
        with self._lock:
            self._script.extend(replies)

    def push_for(self, marker: str, *replies: Reply) -> None:
        """Queue replies for the conversation whose user text contains `marker` (sessions run at once)."""
        with self._lock:
            self._routes.setdefault(marker, []).extend(replies)

    def clear(self) -> None:
        """Drop every reply not served yet."""
        with self._lock:
            self._script.clear()
            self._routes.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._script) + sum(len(replies) for replies in self._routes.values())

    @property
    def conversation(self) -> list[RecordedRequest]:
        """The requests that consumed the script, in order."""
        with self._lock:
            return [request for request in self.requests if request.scripted]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_reply(self, body: dict[str, Any]) -> tuple[Reply, bool]:
        with self._lock:
            if is_side_request(body):
                return Text(self.side_text), False
            queue = self._queue_for(body)
            if not queue:
                return Text(self.side_text), False
            reply = queue.pop(0)
            if isinstance(reply, ApiError) and reply.times > 1:
                queue.insert(0, replace(reply, times=reply.times - 1))
            if isinstance(reply, SubagentCall):
                self._routes.setdefault(reply.prompt, []).extend(reply.replies)
            return reply, True

    def _queue_for(self, body: dict[str, Any]) -> list[Reply]:
        """The routed script whose marker the request's user text carries, else the main one."""
        if self._routes:
            for text in user_texts(body):
                for marker, replies in self._routes.items():
                    if marker in text:
                        return replies
        return self._script

    def _not_found(self, handler: BaseHTTPRequestHandler) -> None:
        payload = b'{"type":"error","error":{"type":"not_found_error","message":"not here"}}'
        handler.send_response(404)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        path = handler.path.split("?", 1)[0]
        if path != "/v1/messages":
            with self._lock:
                self.requests.append(RecordedRequest(handler.path, body, scripted=False))
            self._not_found(handler)
            return
        reply, scripted = self._next_reply(body)
        with self._lock:
            self.requests.append(RecordedRequest(handler.path, body, scripted=scripted))
        if isinstance(reply, ApiError):
            self._error(handler, reply)
            return
        self._stream(handler, reply)

    def _error(self, handler: BaseHTTPRequestHandler, reply: ApiError) -> None:
        payload = json.dumps(
            {"type": "error", "error": {"type": "invalid_request_error", "message": reply.message}}
        ).encode()
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _stream(self, handler: BaseHTTPRequestHandler, reply: Text | BashCall | SubagentCall | Stall) -> None:
        message_id = f"msg_{next(self._ids):024d}"
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        final = reply.then if isinstance(reply, Stall) else reply
        events = _stream_events(message_id, _content_blocks(final, self._ids))
        try:
            if isinstance(reply, Stall):
                handler.wfile.write(next(events))
                handler.wfile.flush()
                time.sleep(reply.seconds)
            for event in events:
                handler.wfile.write(event)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return


@contextmanager
def running_fake_api(script: Sequence[Reply] = ()) -> Iterator[FakeMessagesApi]:
    api = FakeMessagesApi(script)
    api.start()
    try:
        yield api
    finally:
        api.stop()
