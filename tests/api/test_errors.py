"""A table of bad inputs: each gets the right status and an OpenAI-shaped error, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from smallfleet.trace.sqlite import SQLiteTraceStore

OK_MSG = [{"role": "user", "content": "hi"}]


def body(**overrides: Any) -> dict[str, Any]:
    return {"model": "fake-small", "messages": OK_MSG, **overrides}


CASES: list[tuple[str, Any, int, str | None, str | None]] = [
    # (name, request body, status, param, code)
    ("not json", "{not json", 400, None, None),
    ("json list", [1, 2], 400, None, None),
    ("no messages", {"model": "fake-small"}, 400, "messages", None),
    ("empty messages", body(messages=[]), 400, "messages", None),
    ("bad role", body(messages=[{"role": "robot", "content": "x"}]), 400, "messages[0].role", None),
    ("user without content", body(messages=[{"role": "user"}]), 400, "messages[0]", None),
    ("content is a number", body(messages=[{"role": "user", "content": 5}]), 400, "messages[0].content", None),
    ("no model", {"messages": OK_MSG}, 400, "model", None),
    ("unknown model", body(model="gpt-17"), 400, "model", "model_not_found"),
    ("temperature too high", body(temperature=3), 400, "temperature", None),
    ("negative temperature", body(temperature=-0.1), 400, "temperature", None),
    ("top_p above one", body(top_p=1.5), 400, "top_p", None),
    ("max_tokens zero", body(max_tokens=0), 400, "max_tokens", None),
    ("max_tokens text", body(max_tokens="ten"), 400, "max_tokens", None),
    ("max_completion_tokens negative", body(max_completion_tokens=-5), 400, "max_completion_tokens", None),
    ("n above one", body(n=2), 400, "n", None),
    ("top_logprobs too many", body(logprobs=True, top_logprobs=25), 400, "top_logprobs", None),
    ("top_logprobs without logprobs", body(top_logprobs=2), 400, "top_logprobs", None),
    ("five stop strings", body(stop=["a", "b", "c", "d", "e"]), 400, "stop", None),
    ("empty stop string", body(stop=""), 400, "stop", None),
    ("seed not an int", body(seed="abc"), 400, "seed", None),
    ("unknown response_format type", body(response_format={"type": "xml"}), 400, "response_format", None),
    ("json_schema without its object", body(response_format={"type": "json_schema"}), 400,
     "response_format.json_schema", None),
    ("schema false", body(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": False}}),
     400, "response_format.json_schema.schema", None),
    ("invalid schema", body(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "strng"}}}), 400, "response_format.json_schema.schema", None),
    ("unenforceable keyword", body(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "object", "properties": {"tags": {"type": "array", "uniqueItems": True}}}}}), 400,
     "response_format.json_schema.schema", None),
    ("unknown format", body(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "string", "format": "color"}}}), 400, "response_format.json_schema.schema", None),
    ("oneOf not provably exclusive", body(response_format={"type": "json_schema", "json_schema": {"name": "x",
        "schema": {"oneOf": [{"type": "string"}, {"type": "string", "maxLength": 3}]}}}), 400,
     "response_format.json_schema.schema", None),
    ("look-around regex", body(smallfleet={"regex": "(?=a)b"}), 400, "smallfleet.regex", None),
    ("broken grammar", body(smallfleet={"grammar": "start: ( 'a'"}), 400, "smallfleet.grammar", None),
    ("two extension constraints", body(smallfleet={"regex": "a", "choice": ["a"]}), 400, "smallfleet", None),
    ("empty choice list", body(smallfleet={"choice": []}), 400, "smallfleet.choice", None),
    ("response_format with tools", body(response_format={"type": "json_object"},
                                        tools=[{"type": "function", "function": {"name": "f"}}]), 400,
     "response_format", None),
    ("tool_choice without tools", body(tool_choice="required"), 400, "tool_choice", None),
    ("tool_choice names an unknown tool", body(tools=[{"type": "function", "function": {"name": "f"}}],
                                               tool_choice={"type": "function", "function": {"name": "g"}}), 400,
     "tool_choice", None),
    ("repeated tool names", body(tools=[{"type": "function", "function": {"name": "f"}},
                                        {"type": "function", "function": {"name": "f"}}]), 400, "tools", None),
    ("tool name with spaces", body(tools=[{"type": "function", "function": {"name": "get weather"}}]), 400,
     "tools[0].function.name", None),
    ("unenforceable tool parameters", body(tools=[{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"x": {"not": {"type": "null"}}}}}}]), 400, "tools[0].function.parameters",
     None),
    ("tool message without tool_call_id", body(messages=[{"role": "tool", "content": "42"}]), 400, "messages[0]",
     None),
    ("prompt over the context", body(messages=[{"role": "user", "content": "w " * 5000}]), 400, "messages",
     "context_length_exceeded"),
    ("completion over the context", body(max_tokens=10_000), 400, "messages", "context_length_exceeded"),
    ("stream over the context", body(stream=True, max_tokens=10_000), 400, "messages", "context_length_exceeded"),
]


@pytest.mark.parametrize(("name", "payload", "status", "param", "code"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_openai_shaped_error(client: TestClient, name: str, payload: Any, status: int,
                                                     param: str | None, code: str | None) -> None:
    if isinstance(payload, str):
        response = client.post("/v1/chat/completions", content=payload, headers={"content-type": "application/json"})
    else:
        response = client.post("/v1/chat/completions", json=payload)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code


def test_unknown_fields_are_ignored(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json=body(frequency_penalty_v9=1, user="u", metadata={"a": 1}))
    assert response.status_code == 200


def test_unknown_route_is_an_openai_shaped_404(client: TestClient) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found_error"


def test_refused_requests_are_traced_too(client: TestClient, store: SQLiteTraceStore) -> None:
    bad = client.post("/v1/chat/completions", json=body(temperature=9))
    unknown = client.post("/v1/chat/completions", json=body(model="nope"))
    for response in (bad, unknown):
        trace = store.get(response.headers["x-smallfleet-trace-id"])
        assert trace is not None and trace.status == "error" and trace.http_status == 400
    assert store.get(unknown.headers["x-smallfleet-trace-id"]).error_type == "model_not_found"


def test_unenforceable_keyword_error_names_keyword_and_location(client: TestClient) -> None:
    schema = {"type": "object", "properties": {"order": {"type": "object", "properties": {
        "items": {"type": "array", "uniqueItems": True}}}}}
    response = client.post("/v1/chat/completions", json=body(
        response_format={"type": "json_schema", "json_schema": {"name": "o", "schema": schema}}))
    message = response.json()["error"]["message"]
    assert "/properties/order/properties/items" in message and "'uniqueItems'" in message


def test_a_lone_surrogate_is_a_400_naming_where_it_is_not_a_500(store) -> None:  # noqa: ANN001
    from fastapi.testclient import TestClient

    from smallfleet.api.app import create_app
    from smallfleet.backends.base import ModelInfo
    from smallfleet.backends.fake import FakeBackend
    from smallfleet.fleet import Fleet

    small = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
    with TestClient(create_app(Fleet.of_backends([small]), store), raise_server_exceptions=False) as client:
        for path, body, where in (
                ("/v1/chat/completions", b'{"model":"small","messages":[{"role":"user","content":"a\\ud800b"}]}',
                 "body.messages[0].content"),
                ("/v1/responses", b'{"model":"small","input":"x\\udfff"}', "body.input")):
            reply = client.post(path, content=body, headers={"content-type": "application/json"})
            assert reply.status_code == 400, reply.text
            error = reply.json()["error"]
            assert error["type"] == "invalid_request_error" and where in error["message"] and "surrogate" in error["message"]
        paired = client.post("/v1/chat/completions", content=b'{"model":"small","messages":[{"role":"user",'
                             b'"content":"ok \\ud83d\\ude00"}]}', headers={"content-type": "application/json"})
        assert paired.status_code == 200 and "\U0001f600" in paired.json()["choices"][0]["message"]["content"]
        assert len(store.query()) == 3  # the two refusals are traced too, and the batch with them is not lost
