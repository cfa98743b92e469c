"""Request bodies from 6 KB to 30 MB: under the configured maximum they are served, over it they get 413 in
OpenAI's shape, whether the size is declared (Content-Length) or only found out as the body streams in."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from smallfleet.api.app import create_app
from smallfleet.backends.fake import FakeBackend
from smallfleet.fleet import Fleet
from smallfleet.trace.sqlite import SQLiteTraceStore

LIMIT = 1024 * 1024


def body_of(size: int) -> bytes:
    """A valid chat request of about `size` bytes."""
    filler = "a" * max(0, size - 80)
    return json.dumps({"model": "fake-small", "messages": [{"role": "user", "content": filler}],
                       "max_tokens": 4}).encode()


@pytest.fixture
def limited(fake: FakeBackend, store: SQLiteTraceStore):  # noqa: ANN201
    with TestClient(create_app(Fleet.of_backends([fake]), store, max_body_bytes=LIMIT)) as client:
        yield client


@pytest.mark.parametrize("size", [6_000, 64_000, 1_000_000])
def test_bodies_under_the_limit_are_served(limited: TestClient, size: int) -> None:
    reply = limited.post("/v1/chat/completions", content=body_of(size), headers={"content-type": "application/json"})
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize("size", [LIMIT + 1_000, 5_000_000, 30_000_000])
def test_bodies_over_the_limit_get_413_in_openai_shape(limited: TestClient, size: int) -> None:
    reply = limited.post("/v1/chat/completions", content=body_of(size), headers={"content-type": "application/json"})
    assert reply.status_code == 413
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "request_too_large"
    assert str(LIMIT) in error["message"]
    assert limited.post("/v1/chat/completions", json={"model": "fake-small", "messages": [
        {"role": "user", "content": "still here"}]}).status_code == 200  # the gateway serves on


def test_an_undeclared_body_is_cut_off_as_it_streams_in(limited: TestClient) -> None:
    def chunks():  # noqa: ANN202 - chunked transfer: no Content-Length to refuse up front
        yield b'{"model": "fake-small", "messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"b" * 65536
        yield b'"}]}'

    reply = limited.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 413 and reply.json()["error"]["code"] == "request_too_large"


def test_the_default_limit_takes_a_long_prompt(client: TestClient) -> None:
    reply = client.post("/v1/chat/completions", content=body_of(5_000_000), headers={"content-type":
                                                                                   "application/json"})
    assert reply.status_code == 200  # 8 MiB by default (SMALLFLEET_MAX_BODY_BYTES)
