"""Tell a small model what the constraint expects, in its own prompt (through its chat template).

Masking makes invalid output impossible; saying what is wanted makes *good* output likely. The
instruction goes into the system message (appended to the caller's, or as the first message).
Earlier tool calls in the conversation are written back in the same `<tool_call>` form the model
is asked to produce.
"""

from __future__ import annotations

import json

from smallfleet.backends.base import ChatMessage
from smallfleet.constrain.spec import Constraint, ToolsConstraint


def render_tool_calls(message: ChatMessage) -> str:
    """An assistant turn's tool calls as the text a local model writes for them."""
    calls = []
    for call in message.tool_calls:
        try:
            arguments = json.loads(call.arguments)
        except ValueError:
            arguments = call.arguments
        calls.append({"name": call.name, "arguments": arguments})
    return message.content + ToolsConstraint.MARKER + json.dumps(calls, ensure_ascii=False)


def for_local_model(messages: tuple[ChatMessage, ...], constraint: Constraint | None) -> list[dict[str, str]]:
    """Messages as chat-template dicts, with the constraint's instructions in the system message."""
    rendered = [
        {"role": m.role, "content": render_tool_calls(m) if m.tool_calls else m.content} for m in messages
    ]
    if constraint is None:
        return rendered
    instructions = constraint.instructions()
    if rendered and rendered[0]["role"] == "system":
        rendered[0] = {"role": "system", "content": f"{rendered[0]['content']}\n\n{instructions}"}
    else:
        rendered.insert(0, {"role": "system", "content": instructions})
    return rendered
