"""Shared fixtures: fake fleets, the real embedded model (loaded once), servers on loopback."""

from __future__ import annotations

import os
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
from smallfleet.trace.store import TraceStore


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


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server for the session (see tests/pgserver.py): its admin conninfo."""
    from tests import pgserver

    given = os.environ.get("SMALLFLEET_TEST_DATABASE_URL")
    if given:
        yield given
        return
    if pgserver.server_bin() is None:
        if os.environ.get("SMALLFLEET_REQUIRE_POSTGRES") == "1":
            pytest.fail("SMALLFLEET_REQUIRE_POSTGRES=1 but no PostgreSQL server is installed "
                        "(apt-get install postgresql-15)")
        pytest.skip("no PostgreSQL server installed (apt-get install postgresql-15)")
    with pgserver.temporary_server() as url:
        yield url


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """A fresh, empty database on the session's server."""
    from tests import pgserver

    return pgserver.fresh_database(pg_server)


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TraceStore]:
    """Each store in turn: the contract suite runs against both."""
    opened = SQLiteTraceStore(tmp_path / "traces.db") if request.param == "sqlite" else \
        _postgres(request.getfixturevalue("pg_url"))
    yield opened
    opened.close()


def replica_of(store: TraceStore) -> TraceStore:
    """Another store over the same database (a second process or replica)."""
    if isinstance(store, SQLiteTraceStore):
        return SQLiteTraceStore(store.path)
    return _postgres(store.url)  # type: ignore[attr-defined]


def _postgres(url: str) -> TraceStore:
    from smallfleet.trace.postgres import PostgresTraceStore

    return PostgresTraceStore(url)


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
