"""Turn a constraint into a checked llguidance grammar, or refuse it with a 400 that says why.

Runs before a request takes a model slot: a constraint we cannot enforce is refused at once.
Results are cached by the constraint's key in a bounded, per-gateway cache (agents send the same
schema over and over).
"""

from __future__ import annotations

from collections import OrderedDict

from smallfleet.constrain.schema_check import check_schema
from smallfleet.constrain.spec import Constraint, JsonSchemaConstraint, ToolsConstraint
from smallfleet.constrain.toolformat import SMALLFLEET_FORMAT, ToolFormat
from smallfleet.errors import InvalidRequest


def grammar_for(constraint: Constraint, param: str, fmt: ToolFormat = SMALLFLEET_FORMAT) -> str:
    """The llguidance grammar of `constraint` (tool calls in format `fmt`); `InvalidRequest` naming
    `param` if it cannot be enforced."""
    from llguidance import LLMatcher

    if isinstance(constraint, JsonSchemaConstraint):
        check_schema(constraint.schema, param)
    elif isinstance(constraint, ToolsConstraint):
        for i, tool in enumerate(constraint.tools):
            check_schema(tool.parameters, f"tools[{i}].function.parameters")
    try:
        grammar = fmt.grammar(constraint) if isinstance(constraint, ToolsConstraint) else constraint.grammar()
    except ValueError as exc:
        raise InvalidRequest(f"{param}: {exc}", param=param) from None
    is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar)
    if is_error:
        detail = " ".join(messages[0].split()) if messages else "unknown error"
        raise InvalidRequest(f"{param}: cannot be enforced during generation: {detail}", param=param)
    return grammar


class GrammarCache:
    """Bounded LRU of checked grammars by constraint key, for one tool format."""

    def __init__(self, max_entries: int = 512, fmt: ToolFormat = SMALLFLEET_FORMAT) -> None:
        self._max = max_entries
        self._fmt = fmt
        self._items: OrderedDict[str, str] = OrderedDict()

    def grammar(self, constraint: Constraint, param: str) -> str:
        key = constraint.key
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
            return hit
        grammar = grammar_for(constraint, param, self._fmt)
        self._items[key] = grammar
        if len(self._items) > self._max:
            self._items.popitem(last=False)
        return grammar
