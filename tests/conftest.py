"""Shared fixtures: fake fleets, the real embedded model (loaded once), servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from smallfleet.api.app import create_app
from smallfleet.config.settings import Settings
from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend
from smallfleet.fleet import Fleet
from smallfleet.sim.serve import free_port, serve_in_thread  # noqa: F401 - re-exported for the tests
from smallfleet.trace.sqlite import SQLiteTraceStore


# Models pulled with `smallfleet models pull` live in the real SMALLFLEET_HOME (read before any test
# isolates it); `make test` pulls qwen2.5-coder-0.5b-instruct there first.
MODELS_HOME = Settings.from_env().home
QWEN_05 = "qwen2.5-coder-0.5b-instruct"
QWEN_15 = "qwen2.5-coder-1.5b-instruct"


def pulled_model(name: str) -> Path | None:
    from smallfleet.models.store import ModelStore

    installed = ModelStore(MODELS_HOME).get(name)
    return installed.path if installed is not None and installed.path.is_file() else None


def _load_pulled(name: str, required: bool):  # noqa: ANN202 - a LlamaCppBackend
    from smallfleet.backends.llamacpp import LlamaCppBackend, LlamaCppOptions

    path = pulled_model(name)
    if path is None:
        message = f"{name} is not installed in {MODELS_HOME}: run `.venv/bin/smallfleet models pull {name}`"
        if required:
            pytest.fail(message + " (make test does this before running the tests)")
        pytest.skip(message)
    return LlamaCppBackend(name, LlamaCppOptions(path=path, n_ctx=4096))


@pytest.fixture(scope="session")
def qwen05():
    """The real Qwen2.5-Coder-0.5B-Instruct (pulled by `make test`; missing = a failure, not a skip)."""
    backend = _load_pulled(QWEN_05, required=True)
    yield backend
    import asyncio

    asyncio.run(backend.aclose())


@pytest.fixture(scope="session")
def qwen15():
    """The real Qwen2.5-Coder-1.5B-Instruct: its tests run when it is pulled, and are skipped otherwise."""
    backend = _load_pulled(QWEN_15, required=False)
    yield backend
    import asyncio

    asyncio.run(backend.aclose())


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
