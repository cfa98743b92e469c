"""Shared fixtures: fake fleets, the real embedded model (loaded once), servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from smallfleet.api.app import create_app
from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend
from smallfleet.fleet import Fleet
from smallfleet.sim.serve import free_port, serve_in_thread  # noqa: F401 - re-exported for the tests
from smallfleet.trace.sqlite import SQLiteTraceStore


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the user's real ~/.smallfleet or a fleet file from the environment."""
    monkeypatch.setenv("SMALLFLEET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SMALLFLEET_CONFIG", raising=False)


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend(info=ModelInfo(id="fake-small", location="local", context_window=4096))


@pytest.fixture
def store(tmp_path: Path) -> SQLiteTraceStore:
    return SQLiteTraceStore(tmp_path / "traces.db")


def make_app(backends: list[FakeBackend], store: SQLiteTraceStore, max_queue: int = 4,
             queue_timeout_s: float = 5.0) -> FastAPI:
    return create_app(Fleet.of_backends(backends, max_queue=max_queue, queue_timeout_s=queue_timeout_s), store)


@pytest.fixture
def client(fake: FakeBackend, store: SQLiteTraceStore) -> Iterator[TestClient]:
    with TestClient(make_app([fake], store)) as c:
        yield c


@pytest.fixture(scope="session")
def embedded():
    """The real embedded SmolLM2 backend, loaded once for the session."""
    from smallfleet.backends.embedded import embedded_gguf_path
    from smallfleet.backends.llamacpp import LlamaCppBackend, LlamaCppOptions

    backend = LlamaCppBackend("smollm2-135m", LlamaCppOptions(path=embedded_gguf_path(), n_ctx=2048))
    yield backend
    import asyncio

    asyncio.run(backend.aclose())


def recording(inner: object, bodies: list[dict]) -> object:
    """An ASGI app that records each request's JSON body, then lets `inner` answer it."""
    import json

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return await inner(scope, receive, send)
        message = await receive()
        bodies.append(json.loads(message["body"] or b"{}"))

        async def replay():
            return message

        await inner(scope, replay, send)

    return app
