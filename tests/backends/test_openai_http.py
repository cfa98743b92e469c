"""The remote backend turns transport and upstream failures into our error hierarchy."""

from __future__ import annotations

import asyncio

import pytest

from smallfleet.backends.base import ChatMessage, ModelInfo, SamplingParams
from smallfleet.backends.openai_http import OpenAIHTTPBackend, OpenAIHTTPOptions
from smallfleet.errors import BackendError, BackendTimeout, BackendUnavailable, InvalidRequest, Overloaded
from smallfleet.evals.fake_upstream import FakeUpstream
from tests.conftest import free_port, recording, serve_in_thread

MSG = (ChatMessage("user", "hi"),)


def call(url: str, stream: bool = False, timeout_s: float = 5.0, api_key: str | None = None):
    backend = OpenAIHTTPBackend(ModelInfo(id="remote", location="remote", context_window=None),
                                OpenAIHTTPOptions(base_url=url, model="m", timeout_s=timeout_s, api_key=api_key))

    async def run():
        try:
            if stream:
                return [e async for e in backend.stream(MSG, SamplingParams(max_tokens=8))]
            return await backend.generate(MSG, SamplingParams(max_tokens=8))
        finally:
            await backend.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize("stream", [False, True])
def test_connection_refused_is_backend_unavailable(stream: bool) -> None:
    with pytest.raises(BackendUnavailable) as err:
        call(f"http://127.0.0.1:{free_port()}/v1", stream=stream)
    assert "cannot reach remote" in err.value.message
    assert err.value.status == 503


@pytest.mark.parametrize("stream", [False, True])
def test_slow_upstream_is_backend_timeout(stream: bool) -> None:
    with serve_in_thread(FakeUpstream(latency_s=2.0)) as url:
        with pytest.raises(BackendTimeout) as err:
            call(url + "/v1", stream=stream, timeout_s=0.3)
    assert "did not answer within 0.3s" in err.value.message


@pytest.mark.parametrize(("status", "error"), [(429, Overloaded), (400, InvalidRequest), (500, BackendError),
                                                (404, BackendError)])
def test_upstream_error_statuses_are_mapped(status: int, error: type) -> None:
    with serve_in_thread(FakeUpstream(fail_status=status)) as url:
        with pytest.raises(error) as err:
            call(url + "/v1")
    assert f"upstream answered {status}" in err.value.message
    if status == 429:
        assert err.value.retry_after == 2.0


def test_api_key_is_sent_as_bearer_token() -> None:
    seen: dict[str, str] = {}
    inner = FakeUpstream()

    async def app(scope, receive, send):
        if scope["type"] == "http":
            seen.update({k.decode(): v.decode() for k, v in scope["headers"]})
        await inner(scope, receive, send)

    with serve_in_thread(app) as url:
        call(url + "/v1", api_key="sk-test-123")
    assert seen["authorization"] == "Bearer sk-test-123"


def test_non_json_answer_is_a_backend_error() -> None:
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": b"<html>proxy login</html>"})

    with serve_in_thread(app) as url:
        with pytest.raises(BackendError) as err:
            call(url + "/v1")
    assert "not a chat completion" in err.value.message


@pytest.mark.parametrize("charset", [None, "utf-8", "latin-1"])
def test_an_answer_is_read_in_the_charset_it_declares(charset: str | None) -> None:
    text = '{"choices": [{"message": {"role": "assistant", "content": "caf\u00e9 \\ud83d\\ude00"}, ' \
           '"finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}'
    kind = b"application/json" + (f"; charset={charset}".encode() if charset else b"")

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", kind)]})
        await send({"type": "http.response.body", "body": text.encode(charset or "utf-8")})

    with serve_in_thread(app) as url:
        assert call(url + "/v1").text == "caf\u00e9 \U0001f600"


def test_request_body_carries_sampling_parameters() -> None:
    bodies: list[dict] = []
    with serve_in_thread(recording(FakeUpstream(), bodies)) as url:
        call(url + "/v1")
    assert bodies[0]["model"] == "m" and bodies[0]["max_tokens"] == 8 and bodies[0]["logprobs"] is True
