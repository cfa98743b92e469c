"""Contracts over HTTP: listed as models, answered by the router, explained in headers and body."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from smallfleet.api.app import create_app
from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend, FakeReply
from smallfleet.contracts.spec import ContractSpec
from smallfleet.fleet import Fleet
from smallfleet.route.router import Contract, Router
from smallfleet.trace.sqlite import SQLiteTraceStore

SCHEMA = {"type": "object", "properties": {"category": {"enum": ["billing", "tech"]}}, "required": ["category"],
          "additionalProperties": False}


def make(store: SQLiteTraceStore):
    small = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
    big = FakeBackend(info=ModelInfo(id="big", location="remote", context_window=None, price_per_1k_output=1.0))
    spec = ContractSpec.model_validate({"name": "triage", "output": {"json_schema": SCHEMA},
                                        "ladder": [{"model": "small", "accept": {"min_mean_logprob": -0.5}}, "big"]})
    fleet = Fleet.of_backends([small, big])
    app = create_app(fleet, store, Router(fleet, {"triage": Contract.load(spec)}))
    return small, big, app


def test_contract_is_listed_and_routed_with_explanations(store: SQLiteTraceStore) -> None:
    small, big, app = make(store)
    small.enqueue([FakeReply('{"category": "tech"}', logprob=-3.0)])
    big.enqueue(['{"category": "billing"}'])
    with TestClient(app) as client:
        models = [m["id"] for m in client.get("/v1/models").json()["data"]]
        response = client.post("/v1/chat/completions", json={"model": "triage", "messages": [
            {"role": "user", "content": "charged twice"}]})
        trace = store.get(response.headers["x-smallfleet-trace-id"])
    assert "triage" in models
    assert response.status_code == 200
    body = response.json()
    assert json.loads(body["choices"][0]["message"]["content"]) == {"category": "billing"}
    assert body["smallfleet"]["rung"] == 1 and body["smallfleet"]["escalation_reason"] == "low_mean_logprob"
    h = response.headers
    assert h["x-smallfleet-rung"] == "1" and h["x-smallfleet-model"] == "big"
    assert h["x-smallfleet-escalation-reason"] == "low_mean_logprob" and float(h["x-smallfleet-cost"]) > 0
    assert trace.contract == "triage" and trace.rung == 1 and len(trace.attempts) == 2
    assert small.history[0].messages[-1].content == "charged twice"


def test_contract_request_cannot_override_the_output(store: SQLiteTraceStore) -> None:
    _, _, app = make(store)
    with TestClient(app) as client:
        response = client.post("/v1/chat/completions", json={"model": "triage", "response_format": {
            "type": "json_object"}, "messages": [{"role": "user", "content": "x"}]})
        trace = store.get(response.headers["x-smallfleet-trace-id"])
    assert response.status_code == 400 and "is a contract" in response.json()["error"]["message"]
    assert trace.status == "error" and trace.contract == "triage" and trace.http_status == 400


def test_no_acceptable_answer_is_a_502_with_a_trace(store: SQLiteTraceStore) -> None:
    small, big, app = make(store)
    small.enqueue([FakeReply("not json")])
    big.enqueue(["still not json"])
    with TestClient(app) as client:
        response = client.post("/v1/chat/completions", json={"model": "triage", "stream": True, "messages": [
            {"role": "user", "content": "x"}]})
        trace = store.get(response.headers["x-smallfleet-trace-id"])
    assert response.status_code == 502 and response.json()["error"]["code"] == "no_acceptable_answer"
    assert trace.status == "error"


def test_streamed_contract_answer(store: SQLiteTraceStore) -> None:
    small, _, app = make(store)
    small.enqueue([FakeReply('{"category": "tech"}', logprob=-0.1)])
    with TestClient(app) as client:
        with client.stream("POST", "/v1/chat/completions", json={"model": "triage", "stream": True, "messages": [
                {"role": "user", "content": "x"}]}) as r:
            events = [line[6:] for line in r.read().decode().split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["content"] == '{"category": "tech"}'
    assert chunks[-1]["smallfleet"]["rung"] == 0


def test_reference_answers_can_be_attached_to_traces(store: SQLiteTraceStore) -> None:
    small, _, app = make(store)
    small.enqueue([FakeReply('{"category": "tech"}', logprob=-0.1)])
    with TestClient(app) as client:
        answered = client.post("/v1/chat/completions", json={"model": "triage", "messages": [
            {"role": "user", "content": "x"}]})
        trace_id = answered.headers["x-smallfleet-trace-id"]
        ok = client.post(f"/v1/smallfleet/traces/{trace_id}/label", json={"reference": {"category": "billing"}})
        missing = client.post("/v1/smallfleet/traces/nope/label", json={"reference": "x"})
        labels = store.labels("triage")
    assert ok.status_code == 200 and json.loads(labels[trace_id]) == {"category": "billing"}
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
