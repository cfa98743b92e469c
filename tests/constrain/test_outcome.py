"""Checking finished answers: JSON, choices, regexes, tool calls; cut answers are never valid."""

from __future__ import annotations

import json

from smallfleet.backends.base import ToolCall
from smallfleet.constrain.outcome import settle
from smallfleet.constrain.remote import openai_fields
from smallfleet.constrain.spec import (
    ChoiceConstraint,
    JsonObjectConstraint,
    JsonSchemaConstraint,
    RegexConstraint,
    ToolsConstraint,
    ToolSpec,
)

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}, "d": {"type": "string",
                                                                                        "format": "date"}},
          "required": ["n"]}
WEATHER = ToolSpec("weather", "", {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
TOOLS = ToolsConstraint((WEATHER, ToolSpec("noop")), "auto", parallel=False)


def test_json_schema_answers() -> None:
    c = JsonSchemaConstraint(SCHEMA)
    assert settle(c, '{"n": 2}', "stop").valid
    assert "maximum" in settle(c, '{"n": 9}', "stop").problem
    assert not settle(c, '{"n": 1, "d": "yesterday"}', "stop").valid  # formats are checked
    assert "not valid JSON" in settle(c, '{"n": ', "stop").problem
    assert not settle(JsonObjectConstraint(), "[1]", "stop").valid


def test_cut_answer_is_never_valid_even_if_it_parses() -> None:
    outcome = settle(JsonSchemaConstraint({"type": "integer"}), "12", "length")
    assert not outcome.valid and "max_tokens" in outcome.problem


def test_choice_and_regex() -> None:
    assert settle(ChoiceConstraint(("yes", "no")), "no", "stop").valid
    assert not settle(ChoiceConstraint(("yes", "no")), "maybe", "stop").valid
    assert settle(RegexConstraint(r"\d{3}"), "123", "stop").valid
    assert not settle(RegexConstraint(r"\d{3}"), "1234", "stop").valid


def calls(*pairs: tuple[str, dict]) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(f"call_{i}", name, json.dumps(args)) for i, (name, args) in enumerate(pairs))


def test_parsed_tool_calls_are_the_answer() -> None:
    out = settle(TOOLS, '<tool_call>[{"name": "weather", "arguments": {"city": "Oslo"}}]', "stop",
                 calls(("weather", {"city": "Oslo"})))
    assert out.valid and out.content is None
    assert [(c.name, json.loads(c.arguments)) for c in out.tool_calls] == [("weather", {"city": "Oslo"})]


def test_call_text_that_did_not_parse_is_invalid_not_text() -> None:
    out = settle(TOOLS, '<tool_call>[{"name": "weather", "argu', "stop")
    assert not out.valid and "not well-formed" in out.problem


def test_text_is_fine_in_auto_but_not_when_a_call_is_required() -> None:
    assert settle(TOOLS, "It is sunny.", "stop") .content == "It is sunny."
    required = ToolsConstraint((WEATHER,), "required")
    assert not settle(required, "It is sunny.", "stop").valid


def test_bad_tool_calls_are_invalid() -> None:
    assert "unknown tool" in settle(TOOLS, "", "stop", calls(("fly", {}))).problem
    assert "arguments of 'weather'" in settle(TOOLS, "", "stop", calls(("weather", {}))).problem
    assert "parallel" in settle(TOOLS, "", "stop", calls(("noop", {}), ("noop", {}))).problem


def test_tool_arguments_are_closed_to_undeclared_keys() -> None:
    invented = settle(TOOLS, "", "stop", calls(("weather", {"city": "Oslo", "required": ["city"]})))
    assert not invented.valid and "Additional properties" in invented.problem
    open_tool = ToolSpec("log", "", {"type": "object", "properties": {"msg": {"type": "string"}},
                                     "additionalProperties": True})
    assert settle(ToolsConstraint((open_tool,)), "", "stop", calls(("log", {"msg": "x", "extra": 1}))).valid


def test_remote_tool_calls_are_checked_too() -> None:
    good = settle(TOOLS, "", "stop", (ToolCall("call_1", "weather", '{"city": "Rome"}'),))
    bad = settle(TOOLS, "", "stop", (ToolCall("call_1", "weather", '{"town": "Rome"}'),))
    assert good.valid and good.tool_calls[0].id == "call_1"
    assert not bad.valid


def test_remote_forms() -> None:
    assert openai_fields(JsonSchemaConstraint(SCHEMA, "x"), "m")["response_format"]["json_schema"]["schema"] == SCHEMA
    fields = openai_fields(ToolsConstraint((WEATHER,), "required", parallel=False), "m")
    assert fields["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert fields["parallel_tool_calls"] is False


def test_formats_are_checked_by_json_schema_2020_12_rules() -> None:
    from smallfleet.constrain.outcome import schema_problem

    schema = {"type": "string", "format": "time"}
    assert schema_problem("20:00:00Z", schema) is None  # RFC 3339 full-time (found invalid by draft 3's rule)
    assert schema_problem("20:00:00+02:00", schema) is None
    assert schema_problem("20:00:00", schema) is not None  # no offset: not an RFC 3339 time
    assert schema_problem("2026-11-25", {"type": "string", "format": "date"}) is None
