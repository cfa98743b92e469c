"""Templates of a workflow: `{input}`, `{STEP}` and `{STEP.a.b}` read the run's input and earlier steps' outputs."""

from __future__ import annotations

import json
from typing import Any

from smallfleet.errors import InvalidRequest
from smallfleet.workflows.spec import _FIELD


class TemplateError(InvalidRequest):
    code = "workflow_template"


def lookup(context: dict[str, Any], head: str, path: list[str]) -> Any:
    """The value at `head.path...` in the run so far; a missing key is an error naming the path."""
    if head not in context:
        raise TemplateError(f"{head}: not a step of this run (so far: {', '.join(context)})")
    value = context[head]
    for i, key in enumerate(path):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            where = ".".join([head, *path[: i + 1]])
            raise TemplateError(f"{where}: not in the output of {head!r} ({_short(value)})")
    return value


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _json_piece(value: Any) -> str:
    """A value inside a JSON template: a string JSON-escaped (its quotes are the template's), anything else JSON."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)[1:-1]
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def render(text: str, context: dict[str, Any], piece: Any = as_text) -> str:
    """`text` with every `{step.path}` replaced by its value (dicts and lists as compact JSON)."""
    return _FIELD.sub(lambda m: piece(lookup(context, m.group(1), [p for p in m.group(2).split(".") if p])), text)


def render_output(text: str, context: dict[str, Any]) -> Any:
    """A run's result: one `{field}` keeps its value's type; a template written as JSON (`{"name": "{a.name}"}`)
    is rendered with values JSON-escaped and parsed (invalid JSON is an error, not a string); else text."""
    whole = _FIELD.fullmatch(text.strip())
    if whole:
        return lookup(context, whole.group(1), [p for p in whole.group(2).split(".") if p])
    if not text.lstrip().startswith(("{", "[")):
        return render(text, context)
    rendered = render(text, context, _json_piece)
    try:
        return json.loads(rendered)
    except ValueError as exc:
        raise TemplateError(f"output: the template is not valid JSON once rendered ({exc}): {rendered[:120]}") \
            from None


def render_value(value: Any, context: dict[str, Any]) -> Any:
    """A tool argument: a template that is exactly one `{field}` keeps the field's type; other strings render."""
    if isinstance(value, str):
        whole = _FIELD.fullmatch(value)
        if whole:
            return lookup(context, whole.group(1), [p for p in whole.group(2).split(".") if p])
        return render(value, context)
    if isinstance(value, dict):
        return {k: render_value(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context) for v in value]
    return value


def parsed(text: str) -> Any:
    """A step's answer as JSON when it is JSON (so later steps can read into it), else the text."""
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def _short(value: Any) -> str:
    text = as_text(value)
    return text if len(text) <= 80 else text[:77] + "..."
