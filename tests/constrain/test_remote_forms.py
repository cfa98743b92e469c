"""How each constraint goes out to a remote server, per structured-output API, and how answers come back."""

from __future__ import annotations

import json
import re
from typing import get_args

import pytest

from smallfleet.backends.base import TokenLogprob
from smallfleet.constrain.remote import (
    StructuredOutputsAPI,
    choice_gbnf,
    gbnf_literal,
    openai_fields,
    remote_support,
    unwrap,
    wraps_answer,
)
from smallfleet.constrain.spec import (
    ChoiceConstraint,
    GrammarConstraint,
    JsonSchemaConstraint,
    RegexConstraint,
    ToolsConstraint,
    ToolSpec,
)
from smallfleet.errors import InvalidRequest

APIS = get_args(StructuredOutputsAPI)
CHOICE = ChoiceConstraint(("billing", "tech"))
REGEX = RegexConstraint(r"\d{3}-\d{4}")
GRAMMAR = GrammarConstraint('start: "yes" | "no"\n')
SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
TOOLS = ToolsConstraint((ToolSpec("get_weather"),), "required", parallel=False)


def wrapper(answer_schema: dict) -> dict:
    return {"response_format": {"type": "json_schema", "json_schema": {
        "name": "answer", "strict": True,
        "schema": {"type": "object", "properties": {"answer": answer_schema}, "required": ["answer"],
                   "additionalProperties": False}}}}


@pytest.mark.parametrize(("api", "constraint", "expected"), [
    ("openai", CHOICE, wrapper({"type": "string", "enum": ["billing", "tech"]})),
    ("openai", REGEX, wrapper({"type": "string", "pattern": r"^(?:\d{3}-\d{4})$"})),
    ("vllm", CHOICE, {"structured_outputs": {"choice": ["billing", "tech"]}}),
    ("vllm", REGEX, {"structured_outputs": {"regex": r"\d{3}-\d{4}"}}),
    ("vllm", GRAMMAR, {"structured_outputs": {"grammar": 'start: "yes" | "no"\n'}}),
    ("vllm-legacy", CHOICE, {"guided_choice": ["billing", "tech"]}),
    ("vllm-legacy", REGEX, {"guided_regex": r"\d{3}-\d{4}"}),
    ("vllm-legacy", GRAMMAR, {"guided_grammar": 'start: "yes" | "no"\n'}),
    ("llama-server", CHOICE, {"grammar": 'root ::= "billing" | "tech"\n'}),
])
def test_body_fields_per_api_and_kind(api: str, constraint, expected: dict) -> None:
    assert openai_fields(constraint, "big", api) == expected


@pytest.mark.parametrize("api", APIS)
def test_json_schema_and_tools_go_out_as_openai_fields_for_every_api(api: str) -> None:
    fields = openai_fields(JsonSchemaConstraint(SCHEMA, "x"), "big", api)
    assert fields == {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}}}
    tools = openai_fields(TOOLS, "big", api)
    assert tools["tools"][0]["function"]["name"] == "get_weather"
    assert tools["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert not wraps_answer(JsonSchemaConstraint(SCHEMA), api) and not wraps_answer(TOOLS, api)


@pytest.mark.parametrize(("api", "kind", "said"), [
    ("openai", "grammar", "only be enforced by a local model or a server with structured_outputs: vllm"),
    ("llama-server", "regex", "not regular expressions"),
    ("llama-server", "grammar", "not Lark-style grammars"),
])
def test_what_an_api_cannot_take_is_refused_with_a_400(api: str, kind: str, said: str) -> None:
    constraint = {"regex": REGEX, "grammar": GRAMMAR}[kind]
    assert said in (remote_support(kind, api) or "")
    with pytest.raises(InvalidRequest) as err:
        openai_fields(constraint, "big", api)
    assert err.value.status == 400 and err.value.param == "smallfleet"
    assert f"model 'big' ({api} API) cannot enforce a {kind} constraint" in err.value.message
    assert said in err.value.message


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("constraint", [CHOICE, REGEX, GRAMMAR, JsonSchemaConstraint(SCHEMA), TOOLS])
def test_remote_support_is_the_one_rule_openai_fields_follows(api: str, constraint) -> None:
    refused = remote_support(constraint.kind, api)
    if refused is None:
        assert openai_fields(constraint, "big", api)  # something that carries the constraint, never {}
    else:
        with pytest.raises(InvalidRequest):
            openai_fields(constraint, "big", api)


def test_only_choice_and_regex_on_openai_are_wrapped() -> None:
    assert wraps_answer(CHOICE, "openai") and wraps_answer(REGEX, "openai")
    assert not wraps_answer(GRAMMAR, "openai") and not wraps_answer(None, "openai")
    assert not any(wraps_answer(c, api) for c in (CHOICE, REGEX) for api in APIS if api != "openai")


def decode_gbnf_literal(literal: str) -> str:
    """An independent reading of a GBNF string literal, following llama.cpp's `parse_char`."""
    assert literal[0] == '"' and literal[-1] == '"'
    body, out, i = literal[1:-1], [], 0
    simple = {"t": "\t", "r": "\r", "n": "\n", "\\": "\\", '"': '"', "[": "[", "]": "]"}
    while i < len(body):
        ch = body[i]
        assert ch != '"', f"unescaped quote in {literal!r}"
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = body[i + 1]
        if esc in simple:
            out.append(simple[esc])
            i += 2
        else:
            width = {"x": 2, "u": 4, "U": 8}[esc]  # anything else: llama.cpp says "unknown escape"
            out.append(chr(int(body[i + 2:i + 2 + width], 16)))
            i += 2 + width
    return "".join(out)


@pytest.mark.parametrize("text", ['say "hi"', "back\\slash", "C:\\temp\\new", 'both \\"', "line\nbreak\ttab\r",
                                  "bell\x07 del\x7f", "naïve — 日本", "[brackets] | pipes ::= root", ""])
def test_gbnf_literals_escape_quotes_backslashes_and_control_characters(text: str) -> None:
    literal = gbnf_literal(text)
    assert decode_gbnf_literal(literal) == text
    assert "\n" not in literal and "\x07" not in literal  # one line, printable


def test_choice_gbnf_is_one_root_rule_of_escaped_alternatives() -> None:
    grammar = choice_gbnf(('a "quoted" one', "back\\slash", "plain"))
    assert grammar == 'root ::= "a \\"quoted\\" one" | "back\\\\slash" | "plain"\n'
    alternatives = re.findall(r'"(?:[^"\\]|\\.)*"', grammar.removeprefix("root ::= "))
    assert [decode_gbnf_literal(a) for a in alternatives] == ['a "quoted" one', "back\\slash", "plain"]


class _ByteTokenizer:
    """One token per byte, plus end of sequence: lets llguidance match plain strings."""

    eos_token_id, bos_token_id = 256, None
    tokens = [bytes([i]) for i in range(256)] + [b"<eos>"]

    def __call__(self, data: bytes) -> list[int]:
        return list(data)


def test_a_gbnf_reader_accepts_exactly_the_choices() -> None:
    from llguidance import LLMatcher, LLTokenizer, TokenizerWrapper
    from llguidance.gbnf_to_lark import gbnf_to_lark

    options = ('a "quoted" one', "back\\slash", "line\nbreak", "bell\x07", "naïve", "[x] | y")
    grammar = LLMatcher.grammar_from_lark(gbnf_to_lark(choice_gbnf(options)))
    tokenizer = LLTokenizer(TokenizerWrapper(_ByteTokenizer()))

    def accepts(text: str) -> bool:
        matcher = LLMatcher(tokenizer, grammar, log_level=0)
        return matcher.consume_tokens(list(text.encode())) and matcher.is_accepting() and not matcher.is_error()

    assert all(accepts(o) for o in options)
    assert not any(accepts(t) for t in ("a quoted one", "back\\\\slash", "line\\nbreak", "[x]", ""))


def lp(token: str, logprob: float = -0.5) -> TokenLogprob:
    return TokenLogprob(token, logprob)


def test_unwrap_returns_the_answer_and_marks_the_wrapper_tokens_forced() -> None:
    tokens = (lp('{"'), lp("answer"), lp('":'), lp(' "'), lp("bill", -0.2), lp("ing", -0.1), lp('"}'))
    text = "".join(t.token for t in tokens)
    answer, logprobs = unwrap(text, tokens)
    assert answer == "billing"
    assert [t.forced for t in logprobs] == [True, True, True, True, False, False, True]
    assert [t.logprob for t in logprobs] == [t.logprob for t in tokens]


def test_unwrap_keeps_escaped_characters_and_a_token_that_straddles_the_quote() -> None:
    tokens = (lp('{"answer": "say'), lp(' \\"hi\\""'), lp("}"))
    answer, logprobs = unwrap("".join(t.token for t in tokens), tokens)
    assert answer == 'say "hi"'
    assert [t.forced for t in logprobs] == [False, False, True]


@pytest.mark.parametrize("text", ["billing", '{"answer": 3}', '{"answer": "billing", "why": "x"}', '["billing"]',
                                  '{"answer": "bill', '{"result": "billing"}', ""])
def test_a_reply_that_is_not_the_wrapper_comes_back_unchanged(text: str) -> None:
    tokens = (lp(text),)
    assert unwrap(text, tokens) == (text, tokens)


def test_unwrap_leaves_logprobs_alone_when_tokens_do_not_spell_the_text() -> None:
    tokens = (lp("something"), lp("else"))
    answer, logprobs = unwrap(json.dumps({"answer": "tech"}), tokens)
    assert answer == "tech" and logprobs == tokens
