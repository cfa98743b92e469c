"""The Qwen rungs for real: their own tool-call format, auto mode, special tokens under constraints.

Qwen2.5-Coder-0.5B-Instruct is pulled by `make test` (a missing model fails these tests); the
1.5B tests run when `smallfleet models pull qwen2.5-coder-1.5b-instruct` has been done, and are
skipped with that reason otherwise.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import openai
import pytest
import yaml

from smallfleet.api.app import app_from_settings
from smallfleet.backends.base import ChatMessage, SamplingParams, ToolCall
from smallfleet.constrain.outcome import schema_problem, settle
from smallfleet.constrain.spec import JsonSchemaConstraint, ToolsConstraint, ToolSpec
from smallfleet.config.settings import Settings
from smallfleet.evals.tool_suite import TOOLS
from tests.conftest import QWEN_05, pulled_model, serve_in_thread

GREEDY = SamplingParams(max_tokens=96, temperature=0)
WEATHER_PRICE_EMAIL = (TOOLS["get_weather"], TOOLS["get_stock_price"], TOOLS["send_email"])


def ask(backend, text: str, constraint, messages: tuple[ChatMessage, ...] = ()):
    return asyncio.run(backend.generate(messages or (ChatMessage("user", text),), GREEDY, constraint))


def calls_of(gen) -> list[tuple[str, dict]]:
    return [(c.name, json.loads(c.arguments)) for c in gen.tool_calls]


def test_qwen_uses_its_own_tool_format(qwen05) -> None:
    assert qwen05.tool_format.name == "hermes"
    prompt = qwen05.llama.detokenize(qwen05.render((ChatMessage("user", "hi"),),
                                                   ToolsConstraint(WEATHER_PRICE_EMAIL))).decode()
    assert "<tools>" in prompt and '"name": "get_weather"' in prompt  # rendered by the GGUF chat template


def test_required_mode_calls_with_the_special_token(qwen05) -> None:
    """This was a 502 (`constraint engine rejected token 151657`) before the vocabulary bridge."""
    constraint = ToolsConstraint(WEATHER_PRICE_EMAIL, "required", parallel=False)
    gen = ask(qwen05, "What's the weather like in Paris right now?", constraint)
    outcome = settle(constraint, gen.text, gen.finish_reason, gen.tool_calls)
    assert outcome.valid and gen.finish_reason == "stop"
    [(name, args)] = calls_of(gen)  # exactly one call: parallel_tool_calls is off
    assert name == "get_weather" and args["city"] == "Paris"


def test_auto_mode_calls_when_a_tool_fits_and_talks_when_none_does(qwen05) -> None:
    constraint = ToolsConstraint(WEATHER_PRICE_EMAIL, "auto")
    call = ask(qwen05, "What's the weather like in Paris right now?", constraint)
    assert [name for name, _ in calls_of(call)] == ["get_weather"]
    assert calls_of(call)[0][1]["city"] == "Paris"
    text = ask(qwen05, "Tell me a short joke about cats.", constraint)
    assert text.tool_calls == () and text.text.strip()
    assert settle(constraint, text.text, text.finish_reason, text.tool_calls).content == text.text


def test_invented_argument_keys_are_impossible(qwen05) -> None:
    open_schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    constraint = ToolsConstraint((ToolSpec("get_weather", "Weather", open_schema),), "required")
    gen = ask(qwen05, "Weather in Oslo, in celsius please, and be quick", constraint)
    assert all(set(args) <= {"city"} for _, args in calls_of(gen))


def test_grammar_text_that_spells_a_special_token(qwen05) -> None:
    schema = {"type": "object", "properties": {"tag": {"const": "<tool_call>"}, "note": {"type": "string",
                                                                                        "maxLength": 20}},
              "required": ["tag", "note"], "additionalProperties": False}
    gen = ask(qwen05, "Fill in the note with one word.", JsonSchemaConstraint(schema))
    assert gen.finish_reason == "stop" and schema_problem(json.loads(gen.text), schema) is None


def test_earlier_calls_and_results_go_through_the_template(qwen05) -> None:
    history = (ChatMessage("user", "What's the weather in Oslo?"),
               ChatMessage("assistant", "", tool_calls=(ToolCall("call_1", "get_weather", '{"city": "Oslo"}'),)),
               ChatMessage("tool", '{"temperature_c": -3, "sky": "snow"}', tool_call_id="call_1"))
    prompt = qwen05.llama.detokenize(qwen05.render(history, ToolsConstraint(WEATHER_PRICE_EMAIL)), special=True).decode()
    assert "<tool_response>" in prompt and '<tool_call>\n{"name": "get_weather"' in prompt
    assert prompt.index("<tool_call>") < prompt.index("<tool_response>") < prompt.rindex("<|im_start|>assistant")


@pytest.fixture(scope="module")
def qwen_gateway(tmp_path_factory: pytest.TempPathFactory):
    path = pulled_model(QWEN_05)
    if path is None:
        pytest.fail(f"{QWEN_05} is not installed: run `.venv/bin/smallfleet models pull {QWEN_05}`")
    home = tmp_path_factory.mktemp("home")
    fleet = home / "fleet.yaml"
    fleet.write_text(yaml.safe_dump({"models": [{"id": "qwen", "kind": "llamacpp", "path": str(path),
                                                 "n_ctx": 4096}]}))
    with serve_in_thread(app_from_settings(Settings(home=home, config_path=Path(fleet)))) as url:
        yield openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


OPENAI_TOOLS = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                  "parameters": t.parameters}} for t in WEATHER_PRICE_EMAIL]


def test_sdk_auto_tool_call_through_the_gateway(qwen_gateway: openai.OpenAI) -> None:
    reply = qwen_gateway.chat.completions.create(
        model="qwen", messages=[{"role": "user", "content": "What's the weather like in Tokyo?"}],
        tools=OPENAI_TOOLS, tool_choice="auto", temperature=0, max_tokens=96)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls[0].function.name == "get_weather"
    assert json.loads(choice.message.tool_calls[0].function.arguments)["city"] == "Tokyo"


def test_sdk_streamed_auto_tool_call_never_leaks_call_text(qwen_gateway: openai.OpenAI) -> None:
    chunks = list(qwen_gateway.chat.completions.create(
        model="qwen", messages=[{"role": "user", "content": "What's the weather like in Tokyo?"}],
        tools=OPENAI_TOOLS, tool_choice="auto", temperature=0, max_tokens=96, stream=True))
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    names = [tc.function.name for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])
             if tc.function and tc.function.name]
    assert content == "" and names == ["get_weather"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_the_larger_rung_calls_tools_in_auto_mode(qwen15) -> None:
    constraint = ToolsConstraint(WEATHER_PRICE_EMAIL, "auto")
    gen = ask(qwen15, "What is the latest price of the AAPL stock?", constraint)
    assert calls_of(gen) == [("get_stock_price", {"symbol": "AAPL"})]
    text = ask(qwen15, "Tell me a short joke about cats.", constraint)
    assert text.tool_calls == ()
