"""OpenTelemetry spans drawn from traces: GenAI names and attributes, one child per ladder attempt, off by default."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from smallfleet.api.app import create_app
from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend, FakeReply
from smallfleet.contracts.spec import ContractSpec
from smallfleet.fleet import Fleet
from smallfleet.observe.spans import enabled
from smallfleet.route.router import Contract, Router
from smallfleet.trace.sqlite import SQLiteTraceStore
from tests.observe.test_metrics import SCHEMA


def make(store: SQLiteTraceStore) -> tuple[FakeBackend, FakeBackend, InMemorySpanExporter, TestClient]:
    small = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
    big = FakeBackend(info=ModelInfo(id="big", location="remote", context_window=None, price_per_1k_output=1.0))
    spec = ContractSpec.model_validate({"name": "triage", "output": {"json_schema": SCHEMA},
                                        "ladder": [{"model": "small", "accept": {"min_mean_logprob": -0.5}}, "big"]})
    fleet = Fleet.of_backends([small, big])
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(fleet, store, Router(fleet, {"triage": Contract.load(spec)}), tracer_provider=provider)
    return small, big, exporter, TestClient(app)


def test_a_routed_request_is_a_span_with_one_child_per_attempt(store: SQLiteTraceStore) -> None:
    small, big, exporter, client = make(store)
    small.enqueue([FakeReply('{"category": "tech"}', logprob=-3.0)])
    big.enqueue(['{"category": "billing"}'])
    with client:
        response = client.post("/v1/chat/completions", json={"model": "triage", "max_tokens": 20, "messages": [
            {"role": "user", "content": "secret-text-4411"}]})
    trace_id = response.headers["x-smallfleet-trace-id"]
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"route triage", "chat small", "chat big"}
    route, first, second = spans["route triage"], spans["chat small"], spans["chat big"]
    assert route.kind == SpanKind.SERVER and route.parent is None
    assert first.parent.span_id == route.context.span_id and second.parent.span_id == route.context.span_id
    assert first.context.trace_id == route.context.trace_id
    assert route.attributes["smallfleet.trace_id"] == trace_id and route.attributes["smallfleet.rung"] == 1
    assert route.attributes["smallfleet.escalation_reason"] == "low_mean_logprob"
    assert first.attributes["gen_ai.operation.name"] == "chat" and first.attributes["gen_ai.request.model"] == "small"
    assert first.attributes["smallfleet.attempt.status"] == "rejected" and first.kind == SpanKind.INTERNAL
    assert second.attributes["smallfleet.attempt.status"] == "accepted" and second.kind == SpanKind.CLIENT
    assert second.attributes["gen_ai.usage.output_tokens"] > 0 and second.attributes["smallfleet.cost_usd"] > 0
    assert route.start_time <= first.start_time <= first.end_time <= second.start_time <= route.end_time
    assert not any("secret-text-4411" in str(v) for s in spans.values() for v in s.attributes.values())


def test_a_plain_model_request_is_one_chat_span_with_usage(store: SQLiteTraceStore) -> None:
    small, _, exporter, client = make(store)
    small.enqueue([FakeReply("hello there", logprob=-0.1)])
    with client:
        client.post("/v1/chat/completions", json={"model": "small", "temperature": 0.2, "messages": [
            {"role": "user", "content": "hi"}]})
        client.post("/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "hi"}]})
    failed, ok = sorted(exporter.get_finished_spans(), key=lambda s: s.name)
    assert ok.name == "chat small" and ok.attributes["gen_ai.provider.name"] == "smallfleet"
    assert ok.attributes["gen_ai.usage.input_tokens"] > 0 and ok.attributes["gen_ai.usage.output_tokens"] > 0
    assert ok.attributes["gen_ai.request.temperature"] == 0.2
    assert ok.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert failed.name == "chat nope" and failed.status.status_code == StatusCode.ERROR
    assert failed.attributes["error.type"] == "model_not_found"


@pytest.mark.parametrize(("env", "on"), [
    ({}, False), ({"SMALLFLEET_OTEL": "1"}, True), ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ({"SMALLFLEET_OTEL": "1", "OTEL_TRACES_EXPORTER": "none"}, False)])
def test_spans_are_off_unless_the_environment_asks(env: dict[str, str], on: bool) -> None:
    assert enabled(env) is on
