"""Tell a small model what the constraint expects, in its own prompt (through its chat template).

Masking makes invalid output impossible; saying what is wanted makes *good* output likely. The
instruction goes into the system message (appended to the caller's, or as the first message).
Tools are shown the way the model's tool format says: through the chat template's `tools`
variable (Qwen/Hermes) or described in the system message (smallfleet's own format). Earlier tool
calls in the conversation are written back in the same form the model is asked to produce.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from smallfleet.backends.base import ChatMessage
from smallfleet.constrain.spec import Constraint, ToolsConstraint
from smallfleet.constrain.toolformat import SMALLFLEET_FORMAT, ToolFormat


@dataclass(frozen=True)
class TemplateInput:
    """What a chat template renders: messages and, for templates that show them, the tools."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _message(m: ChatMessage, fmt: ToolFormat) -> dict[str, Any]:
    if m.tool_calls:
        return fmt.history_call(m.content, [(c.name, _arguments(c.arguments)) for c in m.tool_calls])
    return {"role": m.role, "content": m.content}


def for_local_model(messages: tuple[ChatMessage, ...], constraint: Constraint | None,
                    fmt: ToolFormat = SMALLFLEET_FORMAT) -> TemplateInput:
    """Messages (and tools) for the chat template, with the constraint's instructions in the system message."""
    rendered = [_message(m, fmt) for m in messages]
    if constraint is None:
        return TemplateInput(rendered)
    tools = None
    if isinstance(constraint, ToolsConstraint):
        instructions = fmt.instructions(constraint)
        tools = fmt.template_tools(constraint)
    else:
        instructions = constraint.instructions()
    if instructions:
        if rendered and rendered[0]["role"] == "system":
            rendered[0] = {"role": "system", "content": f"{rendered[0]['content']}\n\n{instructions}"}
        else:
            rendered.insert(0, {"role": "system", "content": instructions})
    return TemplateInput(rendered, tools)
