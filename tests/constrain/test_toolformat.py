"""Tool formats: grammars, parsing back, the text/call gate, and the special-token-safe tokenizer."""

from __future__ import annotations

import json

import pytest
from llguidance import LLMatcher

from smallfleet.backends.base import Delta
from smallfleet.constrain.spec import ToolsConstraint, ToolSpec
from smallfleet.constrain.toolformat import HERMES_FORMAT, SMALLFLEET_FORMAT, ToolAnswer, detect_format
from smallfleet.constrain.vocab import PlainTextTokenizer

WEATHER = ToolSpec("get_weather", "Weather for a city",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
PRICE = ToolSpec("get_price", "", {"type": "object", "properties": {"symbol": {"type": "string"}}})


def test_hermes_parses_tagged_bare_and_fenced_calls() -> None:
    tagged = ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
              '<tool_call>\n{"name": "get_price", "arguments": {"symbol": "AAPL"}}\n</tool_call>')
    assert HERMES_FORMAT.parse(tagged) == [("get_weather", {"city": "Oslo"}), ("get_price", {"symbol": "AAPL"})]
    assert HERMES_FORMAT.parse('[{"name": "get_weather", "arguments": {"city": "Rome"}}]') == [
        ("get_weather", {"city": "Rome"})]
    assert HERMES_FORMAT.parse('```json\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n```') == [
        ("get_weather", {"city": "Rome"})]
    assert HERMES_FORMAT.parse("It is sunny in Rome.") is None
    assert HERMES_FORMAT.parse('<tool_call>\n{"name": "get_weather", "argu') == []  # started, not well-formed


def test_marker_format_round_trip() -> None:
    text = SMALLFLEET_FORMAT.history_call("", [("get_weather", {"city": "Oslo"})])["content"]
    assert SMALLFLEET_FORMAT.parse(text) == [("get_weather", {"city": "Oslo"})]
    assert SMALLFLEET_FORMAT.parse("plain text") is None


def test_hermes_history_is_openai_shaped_for_the_template() -> None:
    msg = HERMES_FORMAT.history_call("", [("get_weather", {"city": "Oslo"})])
    assert msg["tool_calls"] == [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]
    tools = HERMES_FORMAT.template_tools(ToolsConstraint((WEATHER,)))
    assert tools[0]["function"]["name"] == "get_weather" and tools[0]["function"]["parameters"] == WEATHER.parameters


@pytest.mark.parametrize("mode", ["auto", "required"])
@pytest.mark.parametrize("parallel", [True, False])
def test_grammars_compile(mode: str, parallel: bool) -> None:
    constraint = ToolsConstraint((WEATHER, PRICE), mode, parallel)  # type: ignore[arg-type]
    for fmt in (SMALLFLEET_FORMAT, HERMES_FORMAT):
        grammar = fmt.grammar(constraint)
        is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar)
        assert not is_error, (fmt.name, messages)
    hermes = HERMES_FORMAT.grammar(constraint)
    assert "<tool_call>" in hermes and "</tool_call>" in hermes  # special tokens by name, not as text
    assert ("TEXT" in hermes) == (mode == "auto")
    assert ('("\\n" call)*' in hermes) == parallel


def test_call_bodies_close_undeclared_argument_keys() -> None:
    schema = ToolsConstraint((WEATHER,)).calls_schema()
    assert schema["items"]["properties"]["arguments"]["additionalProperties"] is False
    assert "additionalProperties" not in WEATHER.parameters  # the caller's schema is not modified


def test_detect_format() -> None:
    qwen_like = "{% if tools %}...<tool_call>...{% endif %}"
    assert detect_format(qwen_like, {"<tool_call>", "</tool_call>"}) is HERMES_FORMAT
    assert detect_format(qwen_like, set()) is SMALLFLEET_FORMAT  # tags are not special tokens of this vocabulary
    assert detect_format("{{ messages }}", {"<tool_call>", "</tool_call>"}) is SMALLFLEET_FORMAT


def deltas(*texts: str) -> list[Delta]:
    return [Delta(t) for t in texts]


def test_tool_answer_streams_text_once_it_cannot_be_a_call() -> None:
    answer = ToolAnswer(HERMES_FORMAT, "auto")
    out = [d.text for piece in deltas(" ", "It", " is", " sunny") for d in answer.push(piece)]
    assert "".join(out) == " It is sunny"
    held, calls = answer.finish(" It is sunny")
    assert held == [] and calls == ()


def test_tool_answer_holds_calls_and_parses_them() -> None:
    answer = ToolAnswer(HERMES_FORMAT, "auto")
    text = '[{"name": "get_weather", "arguments": {"city": "Oslo"}}]'
    assert [answer.push(d) for d in deltas('[{"', 'name', text[8:])] == [[], [], []]
    held, calls = answer.finish(text)
    assert held == [] and [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Oslo"})]
    assert calls[0].id.startswith("call_")


def test_tool_answer_flushes_a_short_text_that_looked_like_a_marker() -> None:
    answer = ToolAnswer(SMALLFLEET_FORMAT, "auto")
    assert answer.push(Delta("<")) == []
    held, calls = answer.finish("<")
    assert [d.text for d in held] == ["<"] and calls == ()


def test_required_answers_are_never_streamed_as_text() -> None:
    answer = ToolAnswer(SMALLFLEET_FORMAT, "required")
    assert answer.push(Delta("anything")) == []


def test_plain_text_tokenizer_spells_special_tokens_as_text() -> None:
    # A toy vocabulary where, like Qwen's, the text "<tool_call>" tokenizes to one special token (3).
    pieces = {0: b"<", 1: b"tool_call>", 2: b"x", 3: b"\xff<tool_call>"}
    table = {b"<tool_call>x": [3, 2], b"<": [0], b"tool_call>": [1], b"x": [2]}
    tok = PlainTextTokenizer(tokenize=lambda data: table[data], tokens=[pieces[i] for i in range(4)],
                             eos_token_id=2, special_token_ids=[3])
    assert tok(b"<tool_call>x") == [0, 1, 2]
    assert tok(b"x") == [2]


def test_a_closing_tag_inside_an_argument_does_not_cut_the_call() -> None:
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "a</tool_call>b"}}\n</tool_call>'
    assert HERMES_FORMAT.parse(text) == [("get_weather", {"city": "a</tool_call>b"})]
    assert HERMES_FORMAT.parse('<tool_call>\n{"name": "x", "arguments": {}}\n</tool_call> trailing') == []


def test_streamed_text_that_looked_like_a_call_is_never_lost() -> None:
    answer = ToolAnswer(HERMES_FORMAT, "auto")
    assert answer.push(Delta("\n[1]")) == [] and answer.push(Delta(" see docs")) == []
    held, calls = answer.finish("\n[1] see docs")
    assert "".join(d.text for d in held) == "\n[1] see docs" and calls == ()


def test_text_answers_cannot_start_with_whitespace_or_a_call_opener() -> None:
    for fmt, opener in ((HERMES_FORMAT, "TEXT: /[^\\s\\[{`]"), (SMALLFLEET_FORMAT, "TEXT: /[^\\s<]")):
        assert opener in fmt.grammar(ToolsConstraint((WEATHER,), "auto"))


def test_a_bare_call_is_a_list_with_parallel_calls_and_an_object_without() -> None:
    def bare(parallel: bool) -> str:
        grammar = HERMES_FORMAT.grammar(ToolsConstraint((WEATHER,), "auto", parallel=parallel))
        return next(line for line in grammar.splitlines() if line.startswith("bare:"))

    assert bare(True).startswith('bare: %json {"x-guidance"') and '"type":"array"' in bare(True)
    assert '"type":"array"' not in bare(False) and '"const":"get_weather"' in bare(False)


def test_tool_parameters_with_refs_compile_and_validate() -> None:
    """Pydantic-generated parameters put nested models in $defs; they must resolve inside the calls."""
    params = {"type": "object", "properties": {"where": {"$ref": "#/$defs/Loc"}}, "required": ["where"],
              "$defs": {"Loc": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    tool = ToolSpec("find", "", params)
    for mode in ("auto", "required"):
        constraint = ToolsConstraint((tool, WEATHER), mode)  # type: ignore[arg-type]
        for fmt in (SMALLFLEET_FORMAT, HERMES_FORMAT):
            is_error, messages = LLMatcher.validate_grammar_with_warnings(fmt.grammar(constraint))
            assert not is_error, (fmt.name, mode, messages)
    from smallfleet.backends.base import ToolCall
    from smallfleet.constrain.outcome import settle

    ok = settle(ToolsConstraint((tool,)), "", "stop", (ToolCall("c", "find", '{"where": {"city": "Oslo"}}'),))
    assert ok.valid


def test_composed_parameters_are_not_closed() -> None:
    from smallfleet.constrain.schema_policy import closed_arguments

    schema = {"type": "object", "properties": {"x": {"allOf": [{"$ref": "#/$defs/Base"},
                                                               {"properties": {"b": {}}}]}},
              "$defs": {"Base": {"type": "object", "properties": {"a": {}}}},
              "anyOf": [{"properties": {"c": {}}}]}
    assert closed_arguments(schema) == schema  # nothing here may be closed without rejecting valid input
