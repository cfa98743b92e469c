"""The plain gateway path: smallfleet's own constraints on a remote model, sent in its server's form."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from smallfleet.api.app import create_app
from smallfleet.backends.base import ModelInfo
from smallfleet.backends.openai_http import OpenAIHTTPBackend, OpenAIHTTPOptions
from smallfleet.evals.fake_upstream import FakeUpstream
from smallfleet.fleet import Fleet
from smallfleet.trace.sqlite import SQLiteTraceStore
from tests.conftest import recording, serve_in_thread

MSG = [{"role": "user", "content": "triage: my router is broken"}]
CHOICES = ["billing", "tech"]


def gateway(url: str, store: SQLiteTraceStore, api: str = "openai") -> TestClient:
    remote = OpenAIHTTPBackend(ModelInfo(id="big", location="remote", context_window=None),
                               OpenAIHTTPOptions(base_url=url + "/v1", model="upstream-model",
                                                 structured_outputs=api))
    return TestClient(create_app(Fleet.of_backends([remote]), store))


def wrapping_upstream(answer: str, bodies: list[dict]):
    return recording(FakeUpstream(responder=lambda request: json.dumps({"answer": answer})), bodies)


def test_a_choice_request_to_a_remote_model_gets_the_bare_answer(store: SQLiteTraceStore) -> None:
    bodies: list[dict] = []
    with serve_in_thread(wrapping_upstream("tech", bodies)) as url, gateway(url, store) as client:
        response = client.post("/v1/chat/completions", json={"model": "big", "messages": MSG,
                                                             "smallfleet": {"choice": CHOICES}})
        trace = store.get(response.headers["x-smallfleet-trace-id"])
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert choice["message"]["content"] == "tech" and choice["finish_reason"] == "stop"
    schema = bodies[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["answer"] == {"type": "string", "enum": CHOICES}
    assert trace.status == "ok" and trace.output == "tech"


def test_a_streamed_choice_request_gets_the_bare_answer_as_one_delta(store: SQLiteTraceStore) -> None:
    bodies: list[dict] = []
    with serve_in_thread(wrapping_upstream("billing", bodies)) as url, gateway(url, store) as client:
        with client.stream("POST", "/v1/chat/completions", json={"model": "big", "messages": MSG, "stream": True,
                                                                 "smallfleet": {"choice": CHOICES}}) as r:
            events = [line[6:] for line in r.read().decode().split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    contents = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert [c for c in contents if c] == ["billing"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert bodies[0]["stream"] is True and "response_format" in bodies[0]


def test_a_wrapped_answer_outside_the_choices_is_an_error_not_an_answer(store: SQLiteTraceStore) -> None:
    bodies: list[dict] = []
    with serve_in_thread(wrapping_upstream("weather", bodies)) as url, gateway(url, store) as client:
        response = client.post("/v1/chat/completions", json={"model": "big", "messages": MSG,
                                                             "smallfleet": {"choice": CHOICES}})
    assert response.status_code == 502 and response.json()["error"]["code"] == "invalid_output"
    assert "'weather' is not one of the allowed choices" in response.json()["error"]["message"]


def test_a_regex_request_to_vllm_uses_its_structured_outputs(store: SQLiteTraceStore) -> None:
    bodies: list[dict] = []
    upstream = recording(FakeUpstream(text="555-1234"), bodies)
    with serve_in_thread(upstream) as url, gateway(url, store, api="vllm") as client:
        response = client.post("/v1/chat/completions", json={"model": "big", "messages": MSG,
                                                             "smallfleet": {"regex": r"\d{3}-\d{4}"}})
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "555-1234"
    assert bodies[0]["structured_outputs"] == {"regex": r"\d{3}-\d{4}"}


@pytest.mark.parametrize(("api", "extension", "kind"), [
    ("openai", {"grammar": 'start: "yes" | "no"'}, "grammar"),
    ("llama-server", {"regex": "[a-z]+"}, "regex"),
    ("llama-server", {"grammar": 'start: "yes" | "no"'}, "grammar"),
])
def test_what_the_server_api_cannot_take_is_a_400_before_any_upstream_call(store: SQLiteTraceStore, api: str,
                                                                          extension: dict, kind: str) -> None:
    bodies: list[dict] = []
    with serve_in_thread(recording(FakeUpstream(), bodies)) as url, gateway(url, store, api=api) as client:
        response = client.post("/v1/chat/completions", json={"model": "big", "messages": MSG,
                                                             "smallfleet": extension})
    assert response.status_code == 400
    error = response.json()["error"]
    assert f"model 'big' ({api} API) cannot enforce a {kind} constraint" in error["message"]
    assert error["param"] == "smallfleet" and bodies == []
