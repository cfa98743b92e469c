"""The Responses API over the chat completions path, through the official `openai` SDK: plain, streamed (events
in the documented order), tool calls and their outputs, `text.format` / `parse`, stored conversations, contracts,
errors in the same shape, fields we do not serve refused by name, and the tenant's policy and traces."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from smallfleet.api.app import create_app
from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend
from smallfleet.contracts.spec import ContractSpec
from smallfleet.fleet import Fleet
from smallfleet.route.router import Contract, Router
from smallfleet.trace.sqlite import SQLiteTraceStore

WEATHER = {"type": "function", "name": "get_weather", "description": "weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
CALL = '<tool_call>[{"name": "get_weather", "arguments": {"city": "Oslo"}}]'


@pytest.fixture()
def served(tmp_path: Path):  # noqa: ANN201 - (sdk, fake backend, store, client)
    fake = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
    fleet = Fleet.of_backends([fake])
    store = SQLiteTraceStore(tmp_path / "traces.db")
    spec = ContractSpec(name="triage", quality_target=0.5, output={"choice": ["billing", "tech"]},
                        ladder=[{"model": "small"}])
    app = create_app(fleet, store, router=Router(fleet, {"triage": Contract.load(spec)}))
    with TestClient(app) as client:
        sdk = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=client, max_retries=0)
        yield sdk, fake, store, client


def test_a_plain_response_and_its_trace(served) -> None:  # noqa: ANN001
    sdk, fake, store, _ = served
    response = sdk.responses.create(model="small", input="hello there", instructions="be brief",
                                    max_output_tokens=50)
    assert response.status == "completed" and response.output_text == "hello there"
    assert response.id.startswith("resp_") and response.usage.output_tokens > 0
    assert [m.role for m in fake.history[-1].messages] == ["system", "user"]
    assert fake.history[-1].params.max_tokens == 50
    trace = store.get(response.id.removeprefix("resp_"))
    assert trace.endpoint == "/v1/responses" and trace.output == "hello there"


def test_streamed_events_come_in_the_documented_order(served) -> None:  # noqa: ANN001
    sdk, _, _, _ = served
    events = list(sdk.responses.create(model="small", input="one two three", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "one two three"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].response.output_text == "one two three"


def test_tool_calls_and_their_outputs_make_a_conversation(served) -> None:  # noqa: ANN001
    sdk, fake, _, _ = served
    fake.enqueue([CALL])
    first = sdk.responses.create(model="small", input="weather in Oslo?", tools=[WEATHER], tool_choice="required")
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather" and json.loads(call.arguments) == {"city": "Oslo"}
    fake.enqueue(["It is sunny in Oslo."])
    second = sdk.responses.create(model="small", tools=[WEATHER], input=[
        {"role": "user", "content": "weather in Oslo?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"}])
    assert second.output_text == "It is sunny in Oslo."
    sent = fake.history[-1].messages
    assert [m.role for m in sent] == ["user", "assistant", "tool"]
    assert sent[1].tool_calls[0].id == call.call_id and sent[2].tool_call_id == call.call_id


def test_streamed_tool_calls_are_function_call_events(served) -> None:  # noqa: ANN001
    sdk, fake, _, _ = served
    fake.enqueue([CALL])
    events = list(sdk.responses.create(model="small", input="weather?", tools=[WEATHER], tool_choice="required",
                                       stream=True))
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds and kinds[-1] == "response.completed"
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads(done.arguments) == {"city": "Oslo"}
    assert events[-1].response.output[0].type == "function_call"


def test_parse_with_a_pydantic_model(served) -> None:  # noqa: ANN001
    class Triage(BaseModel):
        category: str

    sdk, fake, _, _ = served
    fake.enqueue(['{"category": "billing"}'])
    parsed = sdk.responses.parse(model="small", input="charged twice", text_format=Triage)
    assert parsed.output_parsed == Triage(category="billing")
    assert fake.history[-1].constraint.kind == "json_schema"


def test_previous_response_id_continues_and_get_returns_it(served) -> None:  # noqa: ANN001
    sdk, fake, _, _ = served
    first = sdk.responses.create(model="small", input="my name is Ada")
    fake.enqueue(["You said your name is Ada."])
    second = sdk.responses.create(model="small", input="what is my name?", previous_response_id=first.id)
    assert [m.content for m in fake.history[-1].messages] == ["my name is Ada", "my name is Ada", "what is my name?"]
    assert sdk.responses.retrieve(second.id).output_text == "You said your name is Ada."
    unstored = sdk.responses.create(model="small", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(unstored.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.create(model="small", input="x", previous_response_id="resp_nope")


def test_a_contract_answers_on_the_responses_surface_too(served) -> None:  # noqa: ANN001
    sdk, fake, _, _ = served
    fake.enqueue(["billing"])
    response = sdk.responses.create(model="triage", input="I was charged twice")
    assert response.output_text == "billing" and response.model_extra["smallfleet"]["contract"] == "triage"


@pytest.mark.parametrize("extra, param", [
    ({"include": ["file_search_call.results"]}, "include"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
     "input[0].content[0].type"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
    ({"truncation": "auto"}, "truncation"),
    ({"background": True}, "background"),
    ({"temperature": 5}, "temperature"),
    ({"model": "nope"}, "model"),
])
def test_what_is_not_served_is_a_400_naming_the_field(served, extra: dict, param: str) -> None:  # noqa: ANN001
    _, _, _, client = served
    reply = client.post("/v1/responses", json={"model": "small", "input": "hi", **extra})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["param"] == param and error["message"] and error["type"] == "invalid_request_error"


def test_bad_bodies_are_400_not_500(served) -> None:  # noqa: ANN001
    _, _, _, client = served
    for body in ({}, {"model": "small"}, {"model": "small", "input": []}, {"model": "small", "input": [1]},
                 {"model": "small", "input": [{"type": "function_call"}]}, "not an object"):
        reply = client.post("/v1/responses", json=body)
        assert reply.status_code == 400, (body, reply.text)
    assert client.post("/v1/responses", content=b"{bad json").status_code == 400
    assert client.get("/v1/responses/resp_missing").status_code == 404


def test_a_stream_that_fails_midway_ends_with_an_error_event_and_response_failed(served) -> None:  # noqa: ANN001
    from smallfleet.backends.fake import FakeReply
    from smallfleet.errors import BackendError

    sdk, fake, _, _ = served
    fake.enqueue([FakeReply("one two three four", error=BackendError("the model crashed"), error_after_tokens=2)])
    events = list(sdk.responses.create(model="small", input="go", stream=True))
    kinds = [e.type for e in events]
    assert kinds[-2:] == ["error", "response.failed"] and "response.completed" not in kinds
    assert events[-2].message == "the model crashed" and events[-2].code == "backend_error"
    failed = events[-1].response
    assert failed.status == "failed" and failed.output[0].status == "incomplete"


def test_nullable_fields_and_odd_items_get_defaults_or_400s_naming_the_field(served) -> None:  # noqa: ANN001
    _, _, _, client = served
    ok = client.post("/v1/responses", json={"model": "small", "input": "hi", "temperature": None, "store": None,
                                            "parallel_tool_calls": None, "top_p": None})
    assert ok.status_code == 200 and ok.json()["store"] is True and ok.json()["temperature"] == 1.0
    for body, param in (({"input": ["hi"]}, "input[0]"),
                        ({"input": [{"type": "reasoning", "summary": []}]}, "input"),
                        ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {"a": 1}}]},
                         "input[0].arguments"),
                        ({"input": [{"type": "function_call_output", "call_id": "c", "output": 5}]},
                         "input[0].output")):
        reply = client.post("/v1/responses", json={"model": "small", **body})
        assert reply.status_code == 400 and reply.json()["error"]["param"] == param, (body, reply.text)


def test_refusals_on_the_responses_surface_are_traced(served) -> None:  # noqa: ANN001
    _, _, store, client = served
    reply = client.post("/v1/responses", json={"model": "small", "input": "hi", "include": ["x"]})
    assert reply.status_code == 400
    trace = store.get(reply.headers["x-smallfleet-trace-id"])
    assert trace.endpoint == "/v1/responses" and trace.http_status == 400


def test_an_answer_cut_by_max_output_tokens_is_incomplete(served) -> None:  # noqa: ANN001
    sdk, _, _, _ = served
    cut = sdk.responses.create(model="small", input="one two three four five", max_output_tokens=2)
    assert cut.status == "incomplete" and cut.incomplete_details.reason == "max_output_tokens"
    assert cut.output[0].status == "incomplete"
    events = list(sdk.responses.create(model="small", input="one two three four five", max_output_tokens=2,
                                       stream=True))
    assert events[-1].type == "response.incomplete" and events[-1].response.output[0].status == "incomplete"
