"""Up-front refusal: invalid or unenforceable schemas are named precisely; enforceable ones pass."""

from __future__ import annotations

import pytest

from smallfleet.constrain.compile import GrammarCache, grammar_for
from smallfleet.constrain.schema_check import check_schema, unenforceable
from smallfleet.constrain.spec import (
    ChoiceConstraint,
    GrammarConstraint,
    JsonObjectConstraint,
    JsonSchemaConstraint,
    RegexConstraint,
    ToolsConstraint,
    ToolSpec,
)
from smallfleet.errors import InvalidRequest


def test_locations_are_json_pointers_to_the_offending_keyword() -> None:
    schema = {"type": "object", "properties": {
        "a/b": {"type": "array", "items": {"type": "object", "properties": {"c": {"not": {"type": "null"}}}}},
        "d": {"anyOf": [{"type": "string"}, {"type": "array", "uniqueItems": True}]}},
        "$defs": {"x": {"type": "string", "format": "color"}}}
    problems = unenforceable(schema)
    assert "/properties/a~1b/items/properties/c: keyword 'not' cannot be enforced during generation" in problems
    assert "/properties/d/anyOf/1: keyword 'uniqueItems' cannot be enforced during generation" in problems
    assert any(p.startswith("/$defs/x: format 'color' is not supported") for p in problems)


def test_annotations_and_unknown_extension_keys_are_accepted() -> None:
    assert unenforceable({"title": "t", "description": "d", "examples": [1], "x-vendor": 1, "type": "integer"}) == []


@pytest.mark.parametrize("schema", [{"type": "strng"}, {"minimum": "zero"}, {"required": "name"}])
def test_invalid_schemas_are_refused_as_invalid(schema: dict) -> None:
    with pytest.raises(InvalidRequest, match="not a valid JSON Schema"):
        check_schema(schema, "response_format.json_schema.schema")


def test_engine_level_refusals_pass_through_with_their_reason() -> None:
    with pytest.raises(InvalidRequest, match="oneOf constraints are not supported"):
        grammar_for(JsonSchemaConstraint({"oneOf": [{"type": "string"}, {"type": "string", "maxLength": 2}]}), "p")
    with pytest.raises(InvalidRequest, match="look-around"):
        grammar_for(RegexConstraint("(?=x)y"), "smallfleet.regex")
    with pytest.raises(InvalidRequest, match="smallfleet.grammar"):
        grammar_for(GrammarConstraint("start: ( 'a'"), "smallfleet.grammar")


@pytest.mark.parametrize("constraint", [
    JsonObjectConstraint(), ChoiceConstraint(("yes", "no", 'say "maybe"')), RegexConstraint(r"[0-9]{3}"),
    GrammarConstraint('start: "a" | "b" start'),
    ToolsConstraint((ToolSpec("f", "d", {"type": "object", "properties": {"x": {"type": "integer"}}}),), "auto"),
    ToolsConstraint((ToolSpec("f"), ToolSpec("g")), "required", parallel=False),
])
def test_every_constraint_kind_compiles(constraint) -> None:
    assert grammar_for(constraint, "p")


def test_tool_parameter_problems_name_the_tool() -> None:
    tools = ToolsConstraint((ToolSpec("ok"), ToolSpec("bad", "", {"type": "array", "uniqueItems": True})))
    with pytest.raises(InvalidRequest) as err:
        grammar_for(tools, "tools")
    assert err.value.param == "tools[1].function.parameters"


def test_grammar_cache_returns_the_same_grammar_and_stays_bounded() -> None:
    cache = GrammarCache(max_entries=2)
    a = cache.grammar(ChoiceConstraint(("a",)), "p")
    assert cache.grammar(ChoiceConstraint(("a",)), "p") is a
    cache.grammar(ChoiceConstraint(("b",)), "p")
    cache.grammar(ChoiceConstraint(("c",)), "p")
    assert len(cache._items) == 2
