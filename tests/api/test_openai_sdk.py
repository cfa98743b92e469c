"""End to end: the official `openai` client against a real gateway serving the embedded SmolLM2."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from smallfleet.api.app import app_from_settings
from smallfleet.config.settings import Settings
from smallfleet.trace.sqlite import SQLiteTraceStore
from tests.conftest import serve_in_thread


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("home")
    app = app_from_settings(Settings(home=home, config_path=None))  # the zero-config default fleet
    with serve_in_thread(app) as url:
        yield url, home / "traces.db"


@pytest.fixture
def sdk(gateway: tuple[str, Path]) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway[0] + "/v1", api_key="unused", max_retries=0)


def test_models_lists_the_embedded_default(sdk: openai.OpenAI) -> None:
    assert [m.id for m in sdk.models.list().data] == ["smollm2-135m"]


def test_non_streamed_completion_with_the_real_model(sdk: openai.OpenAI, gateway: tuple[str, Path]) -> None:
    raw = sdk.chat.completions.with_raw_response.create(
        model="smollm2-135m", temperature=0, max_tokens=24, logprobs=True, top_logprobs=2,
        messages=[{"role": "user", "content": "What is the capital of France? Answer in one sentence."}],
    )
    completion = raw.parse()
    assert "Paris" in completion.choices[0].message.content
    assert completion.usage.completion_tokens == len(completion.choices[0].logprobs.content) > 0
    assert all(len(t.top_logprobs) == 2 for t in completion.choices[0].logprobs.content)
    trace_id = raw.headers["x-smallfleet-trace-id"]
    trace = SQLiteTraceStore(gateway[1]).get(trace_id)
    assert trace is not None and trace.output == completion.choices[0].message.content
    assert trace.backend_model == "smollm2-135m" and trace.logprob_count == completion.usage.completion_tokens


def test_streamed_completion_with_the_real_model(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model="default", temperature=0, max_tokens=16, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Count from one to five."}],
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens <= 16
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] in (
        ["stop"], ["length"])


def test_errors_reach_the_sdk_as_typed_exceptions(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        sdk.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert err.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as err:
        sdk.chat.completions.create(model="smollm2-135m", messages=[{"role": "user", "content": "hi " * 6000}])
    assert err.value.code == "context_length_exceeded"


def test_health_stays_responsive_while_the_model_generates(gateway: tuple[str, Path]) -> None:
    url = gateway[0]
    done = threading.Event()

    def long_generation() -> None:
        httpx.post(f"{url}/v1/chat/completions", timeout=120, json={
            "model": "smollm2-135m", "max_tokens": 200, "temperature": 0,
            "messages": [{"role": "user", "content": "Write a long essay about the sea."}]})
        done.set()

    worker = threading.Thread(target=long_generation)
    worker.start()
    time.sleep(0.3)  # the generation is running on the model's thread now
    worst = 0.0
    checks = 0
    while not done.is_set() and checks < 20:
        t0 = time.perf_counter()
        health = httpx.get(f"{url}/healthz", timeout=5).json()
        worst = max(worst, time.perf_counter() - t0)
        checks += 1
        if checks == 1:
            assert health["models"]["smollm2-135m"]["running"] == 1
        time.sleep(0.05)
    worker.join()
    assert checks >= 3, "the generation finished too quickly to observe"
    assert worst < 0.25, f"health check took {worst:.3f}s while generating: the event loop is blocked"


def test_sdk_structured_output_with_a_pydantic_model(sdk: openai.OpenAI) -> None:
    from typing import Literal

    from pydantic import BaseModel

    class Triage(BaseModel):
        category: Literal["billing", "technical", "account"]
        urgency: Literal["low", "medium", "high"]

    completion = sdk.chat.completions.parse(
        model="smollm2-135m", temperature=0, max_tokens=64, response_format=Triage,
        messages=[{"role": "user", "content": "Ticket: I was charged twice for my subscription!"}])
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Triage)


def test_sdk_tool_call_required(sdk: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Get the weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                       "additionalProperties": False}}}]
    completion = sdk.chat.completions.create(
        model="smollm2-135m", temperature=0, max_tokens=64, tools=tools, tool_choice="required",
        messages=[{"role": "user", "content": "What's the weather in Paris?"}])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)

    stream = sdk.chat.completions.create(
        model="smollm2-135m", temperature=0, max_tokens=64, tools=tools, tool_choice="required", stream=True,
        messages=[{"role": "user", "content": "What's the weather in Paris?"}])
    pieces = [c.choices[0].delta.tool_calls for c in stream if c.choices and c.choices[0].delta.tool_calls]
    arguments = "".join(p[0].function.arguments or "" for p in pieces)
    assert pieces[0][0].function.name == "get_weather" and json.loads(arguments) == json.loads(call.function.arguments)
