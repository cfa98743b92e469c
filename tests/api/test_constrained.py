"""Constraints over HTTP: structured answers, tool calls (plain and streamed), checks of unconstrained answers."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend
from smallfleet.backends.openai_http import OpenAIHTTPBackend, OpenAIHTTPOptions
from smallfleet.evals.fake_upstream import FakeUpstream
from smallfleet.fleet import Fleet
from smallfleet.api.app import create_app
from smallfleet.trace.sqlite import SQLiteTraceStore
from tests.conftest import recording, serve_in_thread

MSG = [{"role": "user", "content": "triage: charged twice"}]
SCHEMA = {"type": "object", "properties": {"category": {"enum": ["billing", "tech"]}}, "required": ["category"],
          "additionalProperties": False}
JSON_FORMAT = {"type": "json_schema", "json_schema": {"name": "triage", "schema": SCHEMA, "strict": True}}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "weather",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}


def sse_chunks(text: str) -> list:
    events = [line[6:] for line in text.split("\n") if line.startswith("data: ")]
    return [json.loads(e) for e in events if e != "[DONE]"], events[-1]


def test_structured_answer_passes_through_and_the_constraint_reaches_the_backend(client: TestClient,
                                                                                 fake: FakeBackend) -> None:
    fake.enqueue(['{"category": "billing"}'])
    response = client.post("/v1/chat/completions", json={"model": "fake-small", "messages": MSG,
                                                         "response_format": JSON_FORMAT})
    assert response.status_code == 200
    assert json.loads(response.json()["choices"][0]["message"]["content"]) == {"category": "billing"}
    assert fake.history[-1].constraint.schema == SCHEMA


def test_an_answer_that_violates_the_schema_is_an_error_not_an_answer(client: TestClient, fake: FakeBackend,
                                                                       store: SQLiteTraceStore) -> None:
    fake.enqueue(['{"category": "weather"}'])
    response = client.post("/v1/chat/completions", json={"model": "fake-small", "messages": MSG,
                                                         "response_format": JSON_FORMAT})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "invalid_output" and "/category" in error["message"]
    trace = store.get(response.headers["x-smallfleet-trace-id"])
    assert trace.status == "error" and trace.output == '{"category": "weather"}'


def test_cut_structured_answer_says_length(client: TestClient, fake: FakeBackend) -> None:
    fake.enqueue(['{"category": "billing"}'])
    data = client.post("/v1/chat/completions", json={"model": "fake-small", "messages": MSG, "max_tokens": 1,
                                                     "response_format": JSON_FORMAT}).json()
    assert data["choices"][0]["finish_reason"] == "length"


def test_tool_call_answer_has_openai_shape(client: TestClient, fake: FakeBackend) -> None:
    fake.enqueue(['<tool_call>[{"name": "get_weather", "arguments": {"city": "Oslo"}}]'])
    data = client.post("/v1/chat/completions", json={"model": "fake-small", "messages": MSG, "tools": [WEATHER],
                                                     "tool_choice": "auto"}).json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Oslo"} and call["id"].startswith("call_")


@pytest.mark.parametrize("choice", ["required", "auto"])
def test_streamed_tool_calls_arrive_as_deltas(client: TestClient, fake: FakeBackend, choice: str) -> None:
    fake.enqueue(['<tool_call>[{"name": "get_weather", "arguments": {"city": "Oslo"}}]'])
    with client.stream("POST", "/v1/chat/completions", json={"model": "fake-small", "messages": MSG, "stream": True,
                                                             "tools": [WEATHER], "tool_choice": choice}) as r:
        chunks, last = sse_chunks(r.read().decode())
    assert last == "[DONE]"
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0]["function"]["name"] == "get_weather" and calls[0]["id"].startswith("call_")
    assert json.loads("".join(c["function"].get("arguments", "") for c in calls)) == {"city": "Oslo"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert not any(d.get("content") for d in deltas)  # the raw <tool_call> text never leaks


def test_tool_conversation_history_is_accepted(client: TestClient, fake: FakeBackend) -> None:
    messages = MSG + [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "-3 C, snow"},
    ]
    fake.enqueue(["It is snowing in Oslo."])
    data = client.post("/v1/chat/completions", json={"model": "fake-small", "messages": messages,
                                                     "tools": [WEATHER]}).json()
    assert data["choices"][0]["message"]["content"] == "It is snowing in Oslo."
    sent = fake.history[-1].messages
    assert sent[1].tool_calls[0].name == "get_weather" and sent[2].tool_call_id == "call_1"


def test_choice_extension(client: TestClient, fake: FakeBackend) -> None:
    fake.enqueue(["tech"])
    data = client.post("/v1/chat/completions", json={"model": "fake-small", "messages": MSG,
                                                     "smallfleet": {"choice": ["billing", "tech"]}}).json()
    assert data["choices"][0]["message"]["content"] == "tech"


def test_remote_model_gets_response_format_and_its_bad_answer_is_caught(store: SQLiteTraceStore) -> None:
    bodies: list[dict] = []
    with serve_in_thread(recording(FakeUpstream(text="definitely not json"), bodies)) as url:
        remote = OpenAIHTTPBackend(ModelInfo(id="big", location="remote", context_window=None),
                                   OpenAIHTTPOptions(base_url=url + "/v1", model="upstream-model"))
        with TestClient(create_app(Fleet.of_backends([remote]), store)) as client:
            bad = client.post("/v1/chat/completions", json={"model": "big", "messages": MSG,
                                                            "response_format": JSON_FORMAT})
            refused = client.post("/v1/chat/completions", json={"model": "big", "messages": MSG,
                                                                "smallfleet": {"grammar": 'start: "a"'}})
    assert bodies[0]["response_format"]["json_schema"]["schema"] == SCHEMA
    assert bad.status_code == 502 and bad.json()["error"]["code"] == "invalid_output"
    assert refused.status_code == 400 and "only be enforced by a local model" in refused.json()["error"]["message"]


def test_text_answer_with_tools_in_auto_streams_as_it_comes(client: TestClient, fake: FakeBackend) -> None:
    fake.enqueue(["It is sunny in Oslo today."])
    with client.stream("POST", "/v1/chat/completions", json={"model": "fake-small", "messages": MSG, "stream": True,
                                                             "tools": [WEATHER]}) as r:
        chunks, last = sse_chunks(r.read().decode())
    contents = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    contents = [x for x in contents if x]
    assert "".join(contents) == "It is sunny in Oslo today." and len(contents) > 1  # token by token, not at the end
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and last == "[DONE]"
