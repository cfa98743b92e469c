"""Check a finished answer against its constraint and turn it into content or tool calls.

Local answers are valid by construction; this check is what makes a remote (or any unconstrained)
answer trustworthy: invalid output becomes an error the caller (and later the router) can act on.
An answer cut by `max_tokens` is never presented as valid.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from smallfleet.backends.base import ToolCall

from smallfleet.constrain.spec import (
    ChoiceConstraint,
    Constraint,
    GrammarConstraint,
    JsonObjectConstraint,
    JsonSchemaConstraint,
    RegexConstraint,
    ToolsConstraint,
)


@dataclass(frozen=True)
class Outcome:
    """What the caller gets: text content and/or tool calls, and whether it honours the constraint."""

    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    valid: bool = True
    problem: str | None = None


def schema_problem(instance: Any, schema: dict[str, Any] | bool) -> str | None:
    """The first validation error of `instance` under `schema` (formats checked), or None."""
    # The 2020-12 checker, not FormatChecker(): that one mixes every draft's checkers, and its "time" is
    # draft 3's "%H:%M:%S" (it rejected the RFC 3339 "20:00:00Z" and accepted "20:00:00" without offset).
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    error = next(iter(validator.iter_errors(instance)), None)
    if error is None:
        return None
    where = "/" + "/".join(str(p) for p in error.absolute_path)
    return f"at {where}: {error.message}"


def _json_problem(text: str, schema: dict[str, Any] | bool) -> str | None:
    try:
        value = json.loads(text)
    except ValueError as exc:
        return f"not valid JSON: {exc}"
    return schema_problem(value, schema)


def settle(constraint: Constraint | None, text: str, finish_reason: str,
           tool_calls: tuple[ToolCall, ...] = ()) -> Outcome:
    """Interpret `text` and the tool calls the backend parsed (local formats or a remote server) under `constraint`."""
    if constraint is None:
        return Outcome(content=text)
    if finish_reason == "length":
        return Outcome(content=text, valid=False, problem="the answer was cut by max_tokens before it was complete")
    if isinstance(constraint, ToolsConstraint):
        return _settle_tools(constraint, text, tool_calls)
    problem: str | None = None
    if isinstance(constraint, JsonSchemaConstraint):
        problem = _json_problem(text, constraint.schema)
    elif isinstance(constraint, JsonObjectConstraint):
        problem = _json_problem(text, {"type": "object"})
    elif isinstance(constraint, ChoiceConstraint):
        problem = None if text in constraint.options else f"{text!r} is not one of the allowed choices"
    elif isinstance(constraint, RegexConstraint):
        try:
            problem = None if re.fullmatch(constraint.pattern, text) else "does not match the regular expression"
        except re.error:
            problem = None  # Rust-only syntax: enforced locally by the engine, cannot be re-checked here
    elif isinstance(constraint, GrammarConstraint):
        problem = None  # enforced by the engine; grammars are only accepted for local models
    return Outcome(content=text, valid=problem is None, problem=problem)


def _settle_tools(constraint: ToolsConstraint, text: str, calls: tuple[ToolCall, ...]) -> Outcome:
    """Check the calls a backend parsed (every backend returns calls in `tool_calls`, in its own format)."""
    by_name = {t.name: t for t in constraint.tools}
    if not calls:
        if text.lstrip().startswith(constraint.MARKER):
            return Outcome(content=text, valid=False, problem="the answer starts a tool call that is not well-formed")
        if constraint.mode == "required":
            return Outcome(content=text, valid=False, problem="a tool call was required but the answer is text")
        return Outcome(content=text)
    if len(calls) > 1 and not constraint.parallel:
        return Outcome(content=None, tool_calls=calls, valid=False, problem="parallel tool calls not allowed")
    for call in calls:
        tool = by_name.get(call.name)
        if tool is None:
            return Outcome(content=None, tool_calls=calls, valid=False, problem=f"unknown tool {call.name!r}")
        problem = _json_problem(call.arguments, constraint.arguments_schema(tool))
        if problem is not None:
            return Outcome(content=None, tool_calls=calls, valid=False,
                           problem=f"arguments of {call.name!r} {problem}")
    return Outcome(content=None, tool_calls=calls)


def canonical(text: str | None) -> str:
    """An answer in comparable form: JSON re-serialised with sorted keys, other text stripped."""
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except ValueError:
        return text.strip()
