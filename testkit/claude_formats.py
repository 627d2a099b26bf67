"""Which line types the real client writes, and what the importer makes of each.

One run of everyday scenarios (a prompt, Bash, a subagent, resume, continue, fork, compact, an API
error) through the pinned client; each line it wrote is then classified by the importer's own
parser. The benchmark `benchmarks.claude_formats` writes the report into docs/; the interop tests
hold the report to what the client really writes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mnemo_otel.model import Entry
from mnemo_otel.telemetry.names import entry_metric_type
from mnemo_otel.transcripts.parse import parse_line
from mnemo_otel.transcripts.reader import RawLine

from .claude_api import ApiError, BashCall, FakeMessagesApi, SubagentCall, Text
from .claude_code import ClaudeHome
from .interop import DiskLine, complete_lines

__all__ = ("LineFormat", "format_label", "render_report", "run_everyday_scenarios", "survey")

REPORT = Path(__file__).resolve().parents[1] / "docs" / "claude-code-formats.md"
_TABLE_HEADER = "| line type | lines | with `uuid` | stored as | metric `entry_type` | roles |"


def run_everyday_scenarios(api: FakeMessagesApi, home: ClaudeHome) -> dict[str, list[str]]:
    """Drive the client through the everyday scenarios; returns the prompts each session holds."""
    api.push(Text("Hello."))
    main = home.run("-p", "say hello").session_id
    api.push(BashCall("echo formats"), Text("It printed formats."))
    home.run("-p", "--resume", main, "run a command")
    api.push(
        SubagentCall("look around the folder", replies=(BashCall("ls"), Text("Nothing here."))),
        Text("Waiting for the subagent."),
        Text("The subagent looked."),
    )
    home.run("-p", "--continue", "delegate a look")
    api.push(Text("A fork's answer."))
    fork = home.run("-p", "--resume", main, "--fork-session", "branch off").session_id
    api.push(Text("<summary>We said hello, ran a command and delegated.</summary>"))
    home.run("-p", "--resume", main, "/compact")
    api.push(ApiError(400, "refused on purpose", times=50))
    home.finish(home.start("-p", "--resume", main, "a refused question"))
    api.clear()
    before_the_fork = ["say hello", "run a command", "delegate a look"]  # the fork holds them too
    return {main: [*before_the_fork, "a refused question"], fork: [*before_the_fork, "branch off"]}


def format_label(line: DiskLine) -> str:
    """``type``, with the subtype for ``system`` lines (``system/compact_boundary``)."""
    subtype = line.obj.get("subtype")
    return f"{line.kind}/{subtype}" if line.kind == "system" and isinstance(subtype, str) else line.kind


@dataclass
class LineFormat:
    """What the client wrote of one line type, and what the importer made of it."""

    lines: int = 0
    with_uuid: int = 0
    stored_as: Counter[str] = field(default_factory=Counter)
    metric_types: Counter[str] = field(default_factory=Counter)
    roles: Counter[str] = field(default_factory=Counter)


def survey(root: Path) -> dict[str, LineFormat]:
    """Every line type under ``root``, classified by the importer's parser."""
    formats: dict[str, LineFormat] = {}
    for line in complete_lines(root):
        found = formats.setdefault(format_label(line), LineFormat())
        found.lines += 1
        found.with_uuid += isinstance(line.obj.get("uuid"), str)
        parsed = parse_line(RawLine(line.offset, line.offset + len(line.data) + 1, line.data))
        if isinstance(parsed, Entry):
            found.stored_as[parsed.entry_type or "(empty)"] += 1
            found.metric_types[entry_metric_type(parsed.entry_type)] += 1
            found.roles[parsed.role.value] += 1
        else:
            found.stored_as["quarantine" if parsed is not None else "skipped"] += 1
    return formats


def _cell(counts: Counter[str]) -> str:
    return ", ".join(f"{name} ({n})" if len(counts) > 1 else name for name, n in counts.most_common())


def render_report(formats: dict[str, LineFormat], version: str) -> str:
    rows = [
        f"| `{label}` | {f.lines} | {_uuid_cell(f)} | {_cell(f.stored_as)} | {_cell(f.metric_types)} "
        f"| {_cell(f.roles)} |"
        for label, f in sorted(formats.items())
    ]
    return "\n".join(
        [
            "# The line types Claude Code writes",
            "",
            f"Written by `python -m benchmarks.claude_formats` from Claude Code {version}, run offline against",
            "the test suite's fake Messages API through everyday scenarios: a prompt, Bash tool use, a",
            "subagent, `--resume`, `--continue`, `--resume --fork-session`, `/compact` and an API error.",
            "The interop tests fail when the client writes a type this table lacks.",
            "",
            "- *with `uuid`*: lines keyed by their `uuid`; the others by `sha256:` of their bytes, so two",
            "  identical lines in one file (the client writes `atis-latch` twice) share one key.",
            "- *stored as*: `mnemo.entries.entry_type` (every type is stored, known or not).",
            "- *metric `entry_type`*: the label on `mnemo.importer.entries`; a type the importer does not",
            "  name is counted as `other`, never dropped.",
            "- *roles*: `prompt` opens an exchange (a typed prompt), `assistant` adds to one, `other` neither.",
            "",
            _TABLE_HEADER,
            "|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def _uuid_cell(found: LineFormat) -> str:
    if found.with_uuid == found.lines:
        return "always"
    return "never" if found.with_uuid == 0 else f"{found.with_uuid} of {found.lines}"


def documented_types(report: Path = REPORT) -> set[str]:
    """The line types the report's table lists."""
    types = set()
    in_table = False
    for row in report.read_text().splitlines():
        in_table = in_table or row == _TABLE_HEADER
        if in_table and row.startswith("| `"):
            types.add(row.split("`")[1])
    return types
