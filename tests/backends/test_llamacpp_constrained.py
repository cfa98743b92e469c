"""Constrained decoding on the real embedded model: every kind of constraint holds token by token."""

from __future__ import annotations

import asyncio
import json
import re

from smallfleet.backends.base import ChatMessage, LogprobSummary, SamplingParams
from smallfleet.constrain.outcome import schema_problem, settle
from smallfleet.constrain.spec import (
    ChoiceConstraint,
    GrammarConstraint,
    JsonSchemaConstraint,
    RegexConstraint,
    ToolsConstraint,
    ToolSpec,
)

GREEDY = SamplingParams(max_tokens=96, temperature=0)


def ask(embedded, text: str, constraint, params: SamplingParams = GREEDY):
    return asyncio.run(embedded.generate((ChatMessage("user", text),), params, constraint))


def test_json_schema_output_validates(embedded) -> None:
    schema = {"type": "object", "properties": {"category": {"enum": ["billing", "technical", "account"]},
                                               "urgency": {"enum": ["low", "medium", "high"]}},
              "required": ["category", "urgency"], "additionalProperties": False}
    gen = ask(embedded, "Ticket: I was charged twice this month, please fix it!", JsonSchemaConstraint(schema))
    assert gen.finish_reason == "stop"
    assert schema_problem(json.loads(gen.text), schema) is None
    assert ", " in gen.text or ": " in gen.text  # our bounded whitespace style
    assert gen.timings.mask_ms and all(ms >= 0 for ms in gen.timings.mask_ms)


def test_forced_tokens_are_marked_and_left_out_of_confidence(embedded) -> None:
    schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"],
              "additionalProperties": False}
    gen = ask(embedded, "Is the sky blue?", JsonSchemaConstraint(schema))
    forced = [lp for lp in gen.logprobs if lp.forced]
    assert forced and all(lp.logprob == 0.0 for lp in forced)
    assert LogprobSummary.of(gen.logprobs).count == len(gen.logprobs) - len(forced)


def test_choice_regex_and_grammar(embedded) -> None:
    assert ask(embedded, "Is water wet?", ChoiceConstraint(("yes", "no", "unsure"))).text in ("yes", "no", "unsure")
    phone = ask(embedded, "Give me a phone number.", RegexConstraint(r"\(\d{3}\) \d{3}-\d{4}")).text
    assert re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}", phone)
    grammar = 'start: "The answer is " ANSWER "."\nANSWER: /[0-9]{1,3}/\n'
    text = ask(embedded, "What is 6 times 7?", GrammarConstraint(grammar)).text
    assert re.fullmatch(r"The answer is [0-9]{1,3}\.", text)


def test_required_tool_call_is_well_formed(embedded) -> None:
    weather = ToolSpec("get_weather", "Get the weather for a city",
                       {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                        "additionalProperties": False})
    constraint = ToolsConstraint((weather,), "required", parallel=False)
    gen = ask(embedded, "What's the weather in Paris?", constraint)
    outcome = settle(constraint, gen.text, gen.finish_reason, gen.tool_calls)
    assert outcome.valid and outcome.tool_calls[0].name == "get_weather"
    assert "city" in json.loads(outcome.tool_calls[0].arguments)


def test_token_limit_cuts_a_constrained_answer_honestly(embedded) -> None:
    constraint = JsonSchemaConstraint({"type": "array", "items": {"type": "string"}, "minItems": 5})
    gen = ask(embedded, "List five animals.", constraint, SamplingParams(max_tokens=4, temperature=0))
    assert gen.finish_reason == "length" and gen.completion_tokens == 4
    assert not settle(constraint, gen.text, gen.finish_reason).valid


def test_constraint_instructions_reach_the_prompt(embedded) -> None:
    constraint = ChoiceConstraint(("alpha", "beta"))
    prompt = embedded.llama.detokenize(embedded.render((ChatMessage("user", "pick"),), constraint)).decode()
    assert "Answer with exactly one of the following, and nothing else: alpha, beta" in prompt


def test_sampling_with_a_constraint_stays_valid(embedded) -> None:
    schema = {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9}, "maxItems": 4}
    for seed in range(3):
        gen = ask(embedded, "Some digits.", JsonSchemaConstraint(schema),
                  SamplingParams(max_tokens=64, temperature=1.0, seed=seed))
        if gen.finish_reason == "stop":
            assert schema_problem(json.loads(gen.text), schema) is None
