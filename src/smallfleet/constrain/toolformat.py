"""Tool calls in each model's own format: how tools are shown, how calls are written and read back.

A model calls tools best in the format it was trained on. Two formats:

- `HermesFormat` (Qwen2.5, Hermes and other templates that render `tools`): the tool list goes
  through the model's GGUF chat template; calls are `<tool_call>\\n{"name": ..., "arguments": {...}}
  \\n</tool_call>` blocks, where `<tool_call>` and `</tool_call>` are special tokens of the vocabulary
  (referenced by name in the grammar). In `auto` mode the grammar lets the model start either a text
  answer, a `<tool_call>` block, or a bare or ```json-fenced JSON call (what Qwen2.5-Coder writes by
  habit), and every kind of call comes back as OpenAI `tool_calls`; a text answer therefore cannot
  start with whitespace, `[`, `{` or a backtick.
- `MarkerFormat` (smallfleet's own, for templates without tool support such as SmolLM2's): the tool
  list is described in the system message and calls are `<tool_call>[{"name": ..., "arguments":
  {...}}]` as plain text.

Every call body is constrained by the tool list and each tool's parameter schema, closed to
undeclared argument keys (`schema_policy.closed_arguments`); one call unless `parallel`.
`ToolAnswer` decides from the first characters of an answer whether it is text (stream it) or a
call (hold it until it is complete, then parse it into OpenAI-shaped `ToolCall`s); local backends
use it, so every backend returns calls in `Generation.tool_calls`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from smallfleet.backends.base import Delta, ToolCall
from smallfleet.constrain.spec import ToolsConstraint, compact, with_style

Call = tuple[str, Any]  # (name, arguments as parsed JSON)


class ToolFormat(Protocol):
    """How one family of models is shown tools and writes calls."""

    name: str
    call_prefixes: tuple[str, ...]  # an answer starting with one of these (after spaces) is a call

    def grammar(self, constraint: ToolsConstraint) -> str: ...

    def instructions(self, constraint: ToolsConstraint) -> str | None:
        """Text for the system message (None when the chat template presents the tools itself)."""

    def template_tools(self, constraint: ToolsConstraint) -> list[dict[str, Any]] | None:
        """The `tools` variable for the chat template (None when the template does not render tools)."""

    def history_call(self, content: str, calls: list[Call]) -> dict[str, Any]:
        """An earlier assistant turn with calls, as a chat-template message."""

    def parse(self, text: str) -> list[Call] | None:
        """The calls written in `text`, or None when it is a text answer."""

    def write(self, calls: list[Call]) -> str:
        """`calls` exactly as this format's grammar has the model write them (a training target)."""


def _calls_json(calls: list[Call]) -> str:
    return json.dumps([{"name": n, "arguments": a} for n, a in calls], ensure_ascii=False)


def _items(raw: Any) -> list[Call] | None:
    """`{"name", "arguments"}` objects (one or a list) as calls; None if the shape is not that."""
    items = raw if isinstance(raw, list) else [raw]
    if not items or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        return None
    return [(i["name"], i.get("arguments", {})) for i in items]


def recorded_calls(text: str) -> list[Call] | None:
    """The calls of an answer in the router's recorded form (a non-empty JSON list of `{"name", "arguments"}`
    objects, see `route.router.answer_text`), arguments as recorded; None when the answer is text."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not (isinstance(value, list) and value and all(isinstance(c, dict) and "name" in c for c in value)):
        return None
    return [(str(c["name"]), c.get("arguments", {})) for c in value]


@dataclass(frozen=True)
class MarkerFormat:
    """smallfleet's plain-text format: `<tool_call>` then a JSON list of calls."""

    name: str = "smallfleet"
    marker: str = ToolsConstraint.MARKER

    @property
    def call_prefixes(self) -> tuple[str, ...]:
        return (self.marker,)

    def grammar(self, constraint: ToolsConstraint) -> str:
        calls = compact(with_style(constraint.calls_schema()))
        if constraint.mode == "required":
            return f'start: "{self.marker}" calls\ncalls: %json {calls}\n'
        # auto: free text that does not start with "<", or the marker and the calls.
        return f'start: TEXT | "{self.marker}" calls\nTEXT: /[^\\s<][\\s\\S]*/\ncalls: %json {calls}\n'

    def instructions(self, constraint: ToolsConstraint) -> str | None:
        lines = ["You can call these functions:"]
        for t in constraint.tools:
            desc = f" - {t.description}" if t.description else ""
            lines.append(f"- {t.name}{desc}; arguments schema: {compact(t.parameters)}")
        example = '[{"name": "function_name", "arguments": {...}}]'
        # The same text in every mode (the grammar enforces `required`): an agent's first turn is often
        # `required` and the next ones `auto`, and a system message that changed with the mode would make
        # every later turn evaluate the whole prompt again instead of reusing the KV cache.
        lines.append(f"To call functions, reply with {self.marker} followed by a JSON list of calls, like "
                     f"{self.marker}{example}. If no function fits the request, reply normally in text.")
        if not constraint.parallel:
            lines.append("Call at most one function.")
        return "\n".join(lines)

    def template_tools(self, constraint: ToolsConstraint) -> list[dict[str, Any]] | None:
        return None

    def history_call(self, content: str, calls: list[Call]) -> dict[str, Any]:
        return {"role": "assistant", "content": content + self.marker + _calls_json(calls)}

    def write(self, calls: list[Call]) -> str:
        return self.marker + _calls_json(calls)

    def parse(self, text: str) -> list[Call] | None:
        stripped = text.strip()
        if not stripped.startswith(self.marker):
            return None
        try:
            return _items(json.loads(stripped[len(self.marker):])) or []
        except ValueError:
            return []


@dataclass(frozen=True)
class HermesFormat:
    """`<tool_call>` blocks around one JSON call each, tools rendered by the chat template."""

    name: str = "hermes"
    open_tag: str = "<tool_call>"
    close_tag: str = "</tool_call>"
    call_prefixes: tuple[str, ...] = ("<tool_call>", "[", "{", "```")
    fence: str = "```json\n"

    def grammar(self, constraint: ToolsConstraint) -> str:
        listed = dict(constraint.calls_schema())
        defs = {"$defs": listed.pop("$defs")} if "$defs" in listed else {}  # tools' definitions, at each root
        item = listed["items"]
        body = compact(with_style({**item, **defs}))
        block = f'call: {self.open_tag} "\\n" body "\\n" {self.close_tag}\nbody: %json {body}\n'
        calls = 'calls: call ("\\n" call)*\n' if constraint.parallel else "calls: call\n"
        # A bare call is a list of calls when parallel calls are allowed (one object otherwise). Measured on
        # Qwen2.5-Coder-0.5B, auto mode, 60 cases: also allowing a lone object when parallel makes it call
        # more and stop after one call (single 1.0, choose 0.73, parallel 0.0, irrelevant 0.67) against
        # lists only (0.87, 0.73, 0.33, 0.80).
        bare = compact(with_style({**listed, **defs} if constraint.parallel else {**item, **defs}))
        # `required` offers every call form but no text: measured on Qwen2.5-Coder-0.5B (45 cases),
        # <tool_call> blocks only: single 0.0, choose 0.0, parallel 0.07 (it never stops adding calls:
        # 21 answers cut by max_tokens); any call form: 1.0, 0.73, 0.33, none cut (it picks a fenced list).
        forms = "calls | bare | fenced" if constraint.mode == "required" else "TEXT | calls | bare | fenced"
        text = "" if constraint.mode == "required" else "TEXT: /[^\\s\\[{`][\\s\\S]*/\n"
        return (f"start: {forms}\n" + calls + block
                + f"bare: %json {bare}\n" + 'fenced: "```json\\n" bare "\\n```"\n' + text)

    def instructions(self, constraint: ToolsConstraint) -> str | None:
        # Not dependent on the mode, for the same reason as `MarkerFormat.instructions`.
        return None if constraint.parallel else "Call at most one function."

    def template_tools(self, constraint: ToolsConstraint) -> list[dict[str, Any]] | None:
        return [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                  "parameters": t.parameters}} for t in constraint.tools]

    def history_call(self, content: str, calls: list[Call]) -> dict[str, Any]:
        return {"role": "assistant", "content": content,
                "tool_calls": [{"type": "function", "function": {"name": n, "arguments": a}} for n, a in calls]}

    def write(self, calls: list[Call]) -> str:
        """Tagged blocks (the tags are special tokens: tokenise the result with special tokens on)."""
        return "\n".join(f"{self.open_tag}\n{json.dumps({'name': n, 'arguments': a}, ensure_ascii=False)}\n"
                         f"{self.close_tag}" for n, a in calls)

    def parse(self, text: str) -> list[Call] | None:
        stripped = text.strip()
        if stripped.startswith(self.open_tag):
            return self._tagged(stripped)
        if stripped.startswith(self.fence):
            stripped = stripped[len(self.fence):].removesuffix("```")
        if stripped[:1] in ("[", "{"):
            try:
                return _items(json.loads(stripped)) or []
            except ValueError:
                return []
        return None

    def _tagged(self, text: str) -> list[Call]:
        """`<tool_call>` JSON `</tool_call>` blocks, read with a JSON decoder (a closing tag may sit in a string)."""
        decoder = json.JSONDecoder()
        calls: list[Call] = []
        rest = text
        while rest:
            if not rest.startswith(self.open_tag):
                return []
            start = len(rest) - len(rest[len(self.open_tag):].lstrip())  # the JSON after the tag and spaces
            try:
                value, end = decoder.raw_decode(rest, start)
            except ValueError:
                return []
            found = _items(value)
            after = rest[end:].lstrip()
            if not found or not after.startswith(self.close_tag):
                return []
            calls += found
            rest = after[len(self.close_tag):].lstrip()
        return calls


SMALLFLEET_FORMAT = MarkerFormat()
HERMES_FORMAT = HermesFormat()


def detect_format(template: str, has_special: set[str]) -> ToolFormat:
    """Hermes when the chat template renders `tools` and writes `<tool_call>` blocks with special tokens."""
    hermes = "tools" in template and "<tool_call>" in template
    if hermes and {"<tool_call>", "</tool_call>"} <= has_special:
        return HERMES_FORMAT
    return SMALLFLEET_FORMAT


class ToolAnswer:
    """One tool-constrained answer as it streams: text is passed on, calls are held and parsed.

    The first characters decide: an answer that starts with one of the format's call prefixes is a
    call (nothing of it is streamed as text); one that cannot any more is text (streamed from then
    on). `required` answers are calls from the start.
    """

    def __init__(self, fmt: ToolFormat, mode: str) -> None:
        self._fmt = fmt
        self._state = "undecided" if mode == "auto" else "calls"
        self._held: list[Delta] = []

    @property
    def is_call(self) -> bool:
        """The answer has started a call."""
        return self._state == "calls"

    def push(self, delta: Delta) -> list[Delta]:
        """The deltas that may be streamed now."""
        if self._state == "text":
            return [delta]
        if self._state == "calls":
            self._held.append(delta)
            return []
        self._held.append(delta)
        seen = "".join(d.text for d in self._held).lstrip()
        if any(seen.startswith(p) for p in self._fmt.call_prefixes):
            self._state = "calls"
            return []
        if not seen or any(p.startswith(seen) for p in self._fmt.call_prefixes):
            return []  # could still become a call
        self._state = "text"
        held, self._held = self._held, []
        return held

    def finish(self, text: str) -> tuple[list[Delta], tuple[ToolCall, ...]]:
        """Held deltas still to stream (an answer that turned out not to be a call), and the calls `text` makes.

        Everything held is released when no call parses, so a streamed answer never loses text that a
        non-streamed one would show (the caller's check then reports a call that is not well-formed).
        """
        calls = self._fmt.parse(text) or []
        held, self._held = ([], []) if calls else (self._held, [])
        return held, tuple(ToolCall(new_call_id(), name, json.dumps(args, ensure_ascii=False))
                           for name, args in calls)


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]
