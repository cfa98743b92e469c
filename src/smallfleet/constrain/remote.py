"""A constraint as an OpenAI-compatible server understands it: `response_format` and `tools`.

Choice, regex and grammar constraints have no portable OpenAI form; they are refused for remote
models with a clear error rather than sent unconstrained.
"""

from __future__ import annotations

from typing import Any

from smallfleet.constrain.spec import (
    Constraint,
    JsonObjectConstraint,
    JsonSchemaConstraint,
    ToolsConstraint,
)
from smallfleet.errors import InvalidRequest


def openai_fields(constraint: Constraint | None, model_id: str) -> dict[str, Any]:
    """Request-body fields that carry `constraint` to a remote server."""
    if constraint is None:
        return {}
    if isinstance(constraint, JsonSchemaConstraint):
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": constraint.name, "schema": constraint.schema}}}
    if isinstance(constraint, JsonObjectConstraint):
        return {"response_format": {"type": "json_object"}}
    if isinstance(constraint, ToolsConstraint):
        tools = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                    "parameters": t.parameters}} for t in constraint.tools]
        choice: Any = constraint.mode
        if constraint.mode == "required" and len(constraint.tools) == 1:
            choice = {"type": "function", "function": {"name": constraint.tools[0].name}}
        return {"tools": tools, "tool_choice": choice, "parallel_tool_calls": constraint.parallel}
    raise InvalidRequest(
        f"model {model_id!r} is remote: {constraint.kind} constraints can only be enforced by a local model",
        param="smallfleet",
    )
