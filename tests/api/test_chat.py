"""Chat completions over HTTP with a scripted backend: shapes, streaming, logprobs, traces, failures."""

from __future__ import annotations

import json
import threading
import time

import httpx
from fastapi.testclient import TestClient

from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend, FakeReply
from smallfleet.errors import BackendError
from smallfleet.trace.sqlite import SQLiteTraceStore
from tests.conftest import make_app, serve_in_thread

MSG = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]


def sse_events(text: str) -> list[str]:
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


def test_completion_has_openai_shape_and_is_traced(client: TestClient, fake: FakeBackend,
                                                   store: SQLiteTraceStore) -> None:
    fake.enqueue([FakeReply("General Kenobi", logprob=-0.25)])
    response = client.post("/v1/chat/completions", json={"model": "fake-small", "messages": MSG, "max_tokens": 20,
                                                         "temperature": 0.3, "seed": 7})
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion" and data["model"] == "fake-small"
    choice = data["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "General Kenobi", "refusal": None}
    assert choice["finish_reason"] == "stop" and choice["logprobs"] is None
    assert data["usage"] == {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
    trace_id = response.headers["x-smallfleet-trace-id"]
    assert data["id"] == f"chatcmpl-{trace_id}"
    assert response.headers["x-smallfleet-model"] == "fake-small"
    trace = store.get(trace_id)
    assert trace is not None and trace.status == "ok" and trace.output == "General Kenobi"
    assert trace.messages[1] == {"role": "user", "content": "hello there"}
    assert trace.params == {"max_tokens": 20, "temperature": 0.3, "seed": 7}
    assert trace.completion_tokens == 2 and trace.logprob_mean == -0.25 and trace.logprob_min == -0.25
    assert trace.latency_ms is not None and trace.ttft_ms is not None
    # what reached the backend
    call = fake.history[-1]
    assert call.params.max_tokens == 20 and call.params.seed == 7 and call.messages[0].role == "system"


def test_logprobs_and_top_logprobs_are_returned(client: TestClient, fake: FakeBackend) -> None:
    fake.enqueue(["a b"])
    data = client.post("/v1/chat/completions", json={"model": "fake-small", "messages": MSG, "logprobs": True,
                                                     "top_logprobs": 2}).json()
    content = data["choices"][0]["logprobs"]["content"]
    assert [c["token"] for c in content] == ["a", " b"]
    assert content[1]["bytes"] == list(b" b") and content[0]["logprob"] < 0
    assert fake.history[-1].params.top_logprobs == 2


def test_max_completion_tokens_wins_and_length_is_reported(client: TestClient, fake: FakeBackend) -> None:
    fake.enqueue(["one two three four five"])
    data = client.post("/v1/chat/completions", json={"model": "fake-small", "messages": MSG, "max_tokens": 50,
                                                     "max_completion_tokens": 2}).json()
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["choices"][0]["message"]["content"] == "one two"


def test_content_parts_and_developer_role_are_accepted(client: TestClient, fake: FakeBackend) -> None:
    msgs = [{"role": "developer", "content": "rules"},
            {"role": "user", "content": [{"type": "text", "text": "part one, "}, {"type": "text", "text": "two"}]}]
    assert client.post("/v1/chat/completions", json={"model": "fake-small", "messages": msgs}).status_code == 200
    sent = fake.history[-1].messages
    assert sent[0].role == "system" and sent[1].content == "part one, two"


def test_default_alias_reaches_the_default_model(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json={"model": "default", "messages": MSG})
    assert response.status_code == 200 and response.headers["x-smallfleet-model"] == "fake-small"


def test_streaming_sends_chunks_usage_and_done(client: TestClient, fake: FakeBackend, store: SQLiteTraceStore) -> None:
    fake.enqueue(["The force is strong"])
    with client.stream("POST", "/v1/chat/completions", json={"model": "fake-small", "messages": MSG, "stream": True,
                                                             "stream_options": {"include_usage": True},
                                                             "logprobs": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.read().decode())
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "The force is strong"
    finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4
    assert all("usage" in c for c in chunks)  # include_usage: usage is null on every other chunk
    assert sum(len(c["choices"][0]["logprobs"]["content"]) for c in chunks if c["choices"] and
               c["choices"][0]["logprobs"]) == 4
    trace = store.get(response.headers["x-smallfleet-trace-id"])
    assert trace is not None and trace.stream and trace.status == "ok" and trace.output == text


def test_failure_after_the_stream_started_is_an_error_frame_not_done(client: TestClient, fake: FakeBackend,
                                                                      store: SQLiteTraceStore) -> None:
    fake.enqueue([FakeReply("a b c d e", error=BackendError("engine exploded"), error_after_tokens=2)])
    with client.stream("POST", "/v1/chat/completions",
                       json={"model": "fake-small", "messages": MSG, "stream": True}) as response:
        assert response.status_code == 200
        events = sse_events(response.read().decode())
    assert "[DONE]" not in events
    last = json.loads(events[-1])
    assert last["error"]["message"] == "engine exploded" and last["error"]["type"] == "backend_error"
    trace = store.get(response.headers["x-smallfleet-trace-id"])
    assert trace is not None and trace.status == "error" and trace.error_type == "backend_error"


def test_failure_before_the_first_token_is_a_real_status(client: TestClient, fake: FakeBackend) -> None:
    fake.enqueue([FakeReply("x", error=BackendError("engine down"))])
    response = client.post("/v1/chat/completions", json={"model": "fake-small", "messages": MSG, "stream": True})
    assert response.status_code == 502 and response.json()["error"]["message"] == "engine down"


def test_models_and_health(client: TestClient) -> None:
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == "fake-small"
    assert models["data"][0]["object"] == "model"
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["models"]["fake-small"]["running"] == 0


def post_concurrently(store: SQLiteTraceStore, n: int, max_queue: int, queue_timeout_s: float) -> list[httpx.Response]:
    """Fire `n` requests 50 ms apart at a one-slot model that takes 1 s per answer."""
    slow = FakeBackend(info=ModelInfo(id="slow", location="local", context_window=4096), latency_s=1.0)
    app = make_app([slow], store, max_queue=max_queue, queue_timeout_s=queue_timeout_s)
    results: list[httpx.Response] = []
    with serve_in_thread(app) as url:
        def call() -> None:
            results.append(httpx.post(f"{url}/v1/chat/completions", json={"model": "slow", "messages": MSG},
                                      timeout=30))

        threads = [threading.Thread(target=call) for _ in range(n)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join()
    return results


def test_overload_answers_429_with_retry_after(store: SQLiteTraceStore) -> None:
    results = post_concurrently(store, 4, max_queue=1, queue_timeout_s=5.0)
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 200, 429, 429]  # one running, one queued, two refused
    refused = next(r for r in results if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["type"] == "rate_limit_error"


def test_queued_request_that_waits_too_long_gets_429(store: SQLiteTraceStore) -> None:
    results = post_concurrently(store, 2, max_queue=4, queue_timeout_s=0.2)
    assert sorted(r.status_code for r in results) == [200, 429]
