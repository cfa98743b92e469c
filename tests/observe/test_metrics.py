"""GET /metrics: vLLM's names, our routing series, numbers that agree with `smallfleet report`, bounded labels."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from smallfleet.admission import Admission
from smallfleet.api.app import create_app
from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend, FakeReply
from smallfleet.contracts.spec import ContractSpec
from smallfleet.errors import BackendUnavailable
from smallfleet.fleet import Fleet
from smallfleet.observe.metrics import Metrics, reason_label, snapshot
from smallfleet.route.report import report
from smallfleet.route.router import Contract, Router
from smallfleet.trace.sqlite import SQLiteTraceStore, TraceQuery

SCHEMA = {"type": "object", "properties": {"category": {"enum": ["billing", "tech"]}}, "required": ["category"],
          "additionalProperties": False}


def make(store: SQLiteTraceStore, retries: int = 0) -> tuple[FakeBackend, FakeBackend, Metrics, TestClient]:
    small = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
    big = FakeBackend(info=ModelInfo(id="big", location="remote", context_window=None, price_per_1k_output=1.0))
    spec = ContractSpec.model_validate({"name": "triage", "output": {"json_schema": SCHEMA},
                                        "ladder": [{"model": "small", "accept": {"min_mean_logprob": -0.5}},
                                                   {"model": "big", "retries": retries}]})
    fleet = Fleet.of_backends([small, big])
    metrics = Metrics()
    app = create_app(fleet, store, Router(fleet, {"triage": Contract.load(spec)}), metrics=metrics)
    return small, big, metrics, TestClient(app)


def ask(client: TestClient, model: str, text: str) -> int:
    return client.post("/v1/chat/completions", json={"model": model, "messages": [
        {"role": "user", "content": text}]}).status_code


def test_metrics_use_vllm_names_and_count_what_was_served(store: SQLiteTraceStore) -> None:
    small, big, metrics, client = make(store)
    small.enqueue([FakeReply('{"category": "tech"}', logprob=-0.1), FakeReply('{"category": "tech"}', logprob=-3.0),
                   FakeReply("hello there", logprob=-0.2)])
    big.enqueue(['{"category": "billing"}'])
    with client:
        assert ask(client, "triage", "my router is down") == 200  # local
        assert ask(client, "triage", "charged twice") == 200  # escalated: low_mean_logprob
        assert ask(client, "small", "hi") == 200  # a plain model request
        assert ask(client, "nope", "hi") == 400
        response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in ("smallfleet:request_success_total", "smallfleet:e2e_request_latency_seconds_bucket",
                 "smallfleet:time_to_first_token_seconds_bucket", "smallfleet:prompt_tokens_total",
                 "smallfleet:generation_tokens_total", "smallfleet:num_requests_running",
                 "smallfleet:num_requests_waiting"):
        assert name in text, name
    m = snapshot(metrics)
    assert m["smallfleet:request_success_total{finished_reason=stop,model_name=small}"] == 2
    assert m["smallfleet:request_success_total{finished_reason=stop,model_name=big}"] == 1
    assert m["smallfleet:route_decisions_total{contract=triage,model_name=small,rung=0}"] == 1
    assert m["smallfleet:route_decisions_total{contract=triage,model_name=big,rung=1}"] == 1
    assert m["smallfleet:escalations_total{contract=triage,reason=low_mean_logprob}"] == 1
    assert m["smallfleet:route_attempts_total{contract=triage,model_name=small,rung=0,status=rejected}"] == 1
    assert m["smallfleet:requests_total{code=400,endpoint=/v1/chat/completions}"] == 1
    assert m["smallfleet:requests_total{code=200,endpoint=/v1/chat/completions}"] == 3
    assert m["smallfleet:e2e_request_latency_seconds_count{model_name=small}"] == 2
    assert m["smallfleet:cost_usd_total{contract=triage,model_name=big}"] > 0
    assert m["smallfleet:num_requests_running{model_name=small}"] == 0


def test_metrics_agree_with_the_report(store: SQLiteTraceStore) -> None:
    small, big, metrics, client = make(store)
    small.enqueue([FakeReply('{"category": "tech"}', logprob=-0.1)] * 3 + [FakeReply('{"category": "tech"}',
                                                                                       logprob=-3.0)] * 2)
    big.enqueue(['{"category": "billing"}'] * 2)
    with client:
        for i in range(5):
            assert ask(client, "triage", f"ticket {i}") == 200
        traces = store.query(TraceQuery(limit=100, contract="triage"))
    expected = report(traces, {})
    m = snapshot(metrics)
    routed = m["smallfleet:routed_requests_total{contract=triage}"]
    local = m["smallfleet:local_answers_total{contract=triage}"]
    assert routed == expected["requests"] == 5
    assert round(local / routed, 4) == expected["local_share"] == 0.6
    spent = m["smallfleet:cost_usd_total{contract=triage,model_name=big}"]
    assert round(spent, 6) == expected["cost_usd"]
    all_top = (m["smallfleet:top_rung_answer_cost_usd_total{contract=triage}"]
               / m["smallfleet:top_rung_answers_total{contract=triage}"] * routed)
    assert round(all_top, 6) == expected["cost_all_top_rung_usd"]


def test_no_user_text_or_trace_id_reaches_a_label(store: SQLiteTraceStore) -> None:
    small, _, _, client = make(store)
    small.enqueue([FakeReply("fine", logprob=-0.1)])
    with client:
        response = client.post("/v1/chat/completions", json={"model": "small", "messages": [
            {"role": "user", "content": "zebra-canary-7731"}]})
        client.post("/v1/chat/completions", json={"model": "model-canary-5512 <b>", "messages": [
            {"role": "user", "content": "x"}]})  # an unknown model: a traced 400
        client.post("/v1/smallfleet/traces/path-canary-3391/label", content=b"{not json")  # a malformed body
        text = client.get("/metrics").text
    for canary in ("zebra-canary-7731", "model-canary-5512", "path-canary-3391", response.headers["x-smallfleet-trace-id"]):
        assert canary not in text, canary
    assert 'endpoint="/v1/smallfleet/traces/{id}/label"' in text


def test_queue_rejections_retries_and_breakers(store: SQLiteTraceStore) -> None:
    small, big, metrics, client = make(store, retries=1)
    small.enqueue([FakeReply('{"category": "tech"}', logprob=-3.0)] * 3)
    big.enqueue([FakeReply("", error=BackendUnavailable("down"))] * 6)
    with client:
        for i in range(3):
            client.post("/v1/chat/completions", json={"model": "triage", "messages": [
                {"role": "user", "content": f"t{i}"}]})
    m = snapshot(metrics)
    assert m["smallfleet:backend_retries_total{model_name=big}"] == 3
    assert m["smallfleet:circuit_breaker_state{model_name=big}"] == 2  # open after 3 failures
    assert m["smallfleet:backend_failures_total{code=backend_unavailable,model_name=big}"] == 3


def test_a_full_queue_counts_a_rejection() -> None:
    metrics = Metrics()
    admission = Admission("small", concurrency=1, max_queue=0, timeout_s=1.0, on_change=metrics.queue)

    async def go() -> None:
        async with admission.slot():
            assert snapshot(metrics)["smallfleet:num_requests_running{model_name=small}"] == 1
            with pytest.raises(Exception, match="busy"):
                async with admission.slot():
                    pass
        assert snapshot(metrics)["smallfleet:num_requests_running{model_name=small}"] == 0

    asyncio.run(go())


def test_reasons_are_bounded_labels() -> None:
    assert reason_label("backend_error: backend_timeout; low_mean_logprob") == "backend_error"
    assert reason_label("low_mean_logprob") == "low_mean_logprob" and reason_label(None) == ""


def test_guard_redactions_are_counted_by_category(tmp_path) -> None:  # noqa: ANN001
    from fastapi.testclient import TestClient as Client

    from smallfleet.guard.egress import Guard, GuardSettings
    from tests.guard.test_egress import SECRET_TEXT, SmallDetector

    remote = FakeBackend(info=ModelInfo(id="big", location="remote", context_window=None))
    guard = Guard(GuardSettings("redact"), tmp_path / "audit.db", detector_factory=SmallDetector)  # type: ignore[arg-type]
    metrics = Metrics()
    store = SQLiteTraceStore(tmp_path / "traces.db")
    with Client(create_app(Fleet.of_backends([remote], guard=guard), store, metrics=metrics)) as client:
        assert ask(client, "big", SECRET_TEXT) == 200
    m = snapshot(metrics)
    assert {k: v for k, v in m.items() if k.startswith("smallfleet:guard_redactions_total")} == {
        "smallfleet:guard_redactions_total{category=CREDIT_CARD}": 1,
        "smallfleet:guard_redactions_total{category=EMAIL}": 1, "smallfleet:guard_redactions_total{category=SECRET}": 1}
