"""An answer written the way a local model writes it under its constraint: the training target.

A specialist is trained on the text it will later be forced to produce. Canonical references (keys
sorted, calls as a JSON list) are comparable but not what the grammar emits: llguidance writes an
object's properties in the schema's order with `", "` and `": "` separators (`JSON_STYLE`), and
tool calls appear in the model's own tool format (`<tool_call>` blocks for Qwen, smallfleet's marker
for SmolLM2). Training on sorted keys while serving in schema order teaches the model one order and
forces another, so the target is re-written here: objects in schema property order (keys the schema
does not list keep their order, after the listed ones), calls through `ToolFormat.write` with their
arguments in the tool's parameter order. Text (choice, regex, free text) is the reference itself.
"""

from __future__ import annotations

import json
from typing import Any

from smallfleet.constrain.spec import Constraint, JsonSchemaConstraint, ToolsConstraint
from smallfleet.constrain.toolformat import ToolFormat, recorded_calls


def in_schema_order(value: Any, schema: Any) -> Any:
    """`value` with every object's keys in the order `schema` lists its properties (recursively)."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        listed = [k for k in props if k in value]
        rest = [k for k in value if k not in props]
        return {k: in_schema_order(value[k], props.get(k)) for k in listed + rest}
    if isinstance(value, list):
        items = schema.get("items")
        return [in_schema_order(v, items) for v in value]
    return value


def written_answer(constraint: Constraint | None, reference: str, fmt: ToolFormat) -> str:
    """The exact text a constrained local model writes for the answer `reference` (see the module doc)."""
    if isinstance(constraint, JsonSchemaConstraint):
        try:
            value = json.loads(reference)
        except ValueError:
            return reference
        return json.dumps(in_schema_order(value, constraint.schema), ensure_ascii=False)
    if isinstance(constraint, ToolsConstraint):
        recorded = recorded_calls(reference)
        if recorded is None:
            return reference
        params = {t.name: t.parameters for t in constraint.tools}
        return fmt.write([(name, in_schema_order(args, params.get(name))) for name, args in recorded])
    return reference
