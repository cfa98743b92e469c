"""Output constraints: what shape an answer must have, independent of any engine or backend.

One type per kind of constraint. Each knows its llguidance grammar (`grammar()`), a short
instruction for the model's prompt (`instructions()`), and a stable `key` for compile caches.
Local backends enforce the grammar token by token; remote backends receive the constraint as
`response_format` / `tools` and their answers are checked afterwards (`smallfleet.constrain.outcome`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from smallfleet.constrain.schema_policy import bounded_formats, closed_arguments, hoist_definitions

# Bounded whitespace: exactly ", " between items and ": " after keys, nothing else, so a small model
# cannot loop on spaces or newlines until the token limit.
JSON_STYLE: dict[str, Any] = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def compact(value: Any) -> str:
    """Canonical compact JSON (also used as cache keys)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def with_style(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with our whitespace policy as llguidance's top-level `x-guidance` options."""
    return {"x-guidance": JSON_STYLE, **{k: v for k, v in schema.items() if k != "x-guidance"}}


@dataclass(frozen=True)
class JsonSchemaConstraint:
    """`response_format: {"type": "json_schema", ...}`: a JSON value valid under `schema`."""

    schema: dict[str, Any]
    name: str = "response"
    kind: Literal["json_schema"] = "json_schema"

    @property
    def key(self) -> str:
        return "json_schema:" + compact(self.schema)

    def grammar(self) -> str:
        from llguidance import LLMatcher

        return LLMatcher.grammar_from_json_schema(with_style(bounded_formats(self.schema)))

    def instructions(self) -> str:
        return ("Respond only with a JSON value that matches this JSON Schema, and nothing else:\n"
                + compact(self.schema))


@dataclass(frozen=True)
class JsonObjectConstraint:
    """`response_format: {"type": "json_object"}`: any JSON object."""

    kind: Literal["json_object"] = "json_object"

    @property
    def key(self) -> str:
        return "json_object"

    def grammar(self) -> str:
        from llguidance import LLMatcher

        return LLMatcher.grammar_from_json_schema(with_style({"type": "object"}))

    def instructions(self) -> str:
        return "Respond only with a JSON object, and nothing else."


@dataclass(frozen=True)
class ChoiceConstraint:
    """Extension: the answer is exactly one of `options`."""

    options: tuple[str, ...]
    kind: Literal["choice"] = "choice"

    @property
    def key(self) -> str:
        return "choice:" + compact(list(self.options))

    def grammar(self) -> str:
        alternatives = " | ".join(json.dumps(o) for o in self.options)
        return f"start: {alternatives}\n"

    def instructions(self) -> str:
        return "Answer with exactly one of the following, and nothing else: " + ", ".join(self.options)


@dataclass(frozen=True)
class RegexConstraint:
    """Extension: the whole answer matches `pattern` (Rust regex syntax; no look-around)."""

    pattern: str
    kind: Literal["regex"] = "regex"

    @property
    def key(self) -> str:
        return "regex:" + self.pattern

    def grammar(self) -> str:
        from llguidance import LLMatcher

        return LLMatcher.grammar_from_regex(self.pattern)

    def instructions(self) -> str:
        return f"Answer in the exact format of this regular expression: {self.pattern}"


@dataclass(frozen=True)
class GrammarConstraint:
    """Extension: the answer is a sentence of a Lark-style context-free grammar (rule `start`)."""

    lark: str
    kind: Literal["grammar"] = "grammar"

    @property
    def key(self) -> str:
        return "grammar:" + self.lark

    def grammar(self) -> str:
        from llguidance import LLMatcher

        return LLMatcher.grammar_from_lark(self.lark)

    def instructions(self) -> str:
        return "Answer following this grammar (Lark syntax):\n" + self.lark


@dataclass(frozen=True)
class ToolSpec:
    """One callable function offered to the model."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


ToolMode = Literal["auto", "required"]


@dataclass(frozen=True)
class ToolsConstraint:
    """`tools` + `tool_choice`: plain text (only in `auto`) or calls of the given tools.

    How calls are written depends on the model (`smallfleet.constrain.toolformat`): each call's
    name is constrained by the tool list and its arguments by that tool's parameter schema, closed
    to undeclared keys unless the schema allows them. One call unless `parallel`. `grammar()` and
    `instructions()` here are smallfleet's own format, for models without a tool format of their own.
    """

    tools: tuple[ToolSpec, ...]
    mode: ToolMode = "auto"
    parallel: bool = True
    kind: Literal["tools"] = "tools"

    MARKER = "<tool_call>"

    @property
    def key(self) -> str:
        tools = [[t.name, t.parameters] for t in self.tools]
        return f"tools:{self.mode}:{self.parallel}:" + compact(tools)

    def arguments_schema(self, tool: ToolSpec) -> dict[str, Any]:
        """What a call's arguments must satisfy: the parameters, closed to undeclared keys."""
        return closed_arguments(tool.parameters)

    def calls_schema(self) -> dict[str, Any]:
        """A JSON list of `{"name", "arguments"}` calls, as enforced during generation.

        Each tool's `$defs` move to the root (renamed per tool) so that its `$ref`s still resolve.
        """
        items, defs = [], {}
        for i, t in enumerate(self.tools):
            arguments, hoisted = hoist_definitions(bounded_formats(self.arguments_schema(t)), f"tool{i}_")
            defs.update(hoisted)
            items.append({"type": "object", "properties": {"name": {"const": t.name}, "arguments": arguments},
                          "required": ["name", "arguments"], "additionalProperties": False})
        schema: dict[str, Any] = {"type": "array", "items": items[0] if len(items) == 1 else {"anyOf": items},
                                  "minItems": 1}
        if not self.parallel:
            schema["maxItems"] = 1
        if defs:
            schema["$defs"] = defs
        return schema

    def grammar(self) -> str:
        from smallfleet.constrain.toolformat import SMALLFLEET_FORMAT

        return SMALLFLEET_FORMAT.grammar(self)

    def instructions(self) -> str:
        from smallfleet.constrain.toolformat import SMALLFLEET_FORMAT

        return SMALLFLEET_FORMAT.instructions(self) or ""


Constraint = (JsonSchemaConstraint | JsonObjectConstraint | ChoiceConstraint | RegexConstraint | GrammarConstraint
              | ToolsConstraint)
