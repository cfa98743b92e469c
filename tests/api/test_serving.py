"""The serving routes' direct path (`api.serving`) and the stream's trace written exactly once."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from smallfleet.api.chat import ChatService
from smallfleet.api.protocol import ChatCompletionRequest
from smallfleet.backends.fake import FakeBackend
from smallfleet.fleet import Fleet
from smallfleet.trace.record import Trace
from smallfleet.trace.sqlite import SQLiteTraceStore
from smallfleet.trace.store import TraceQuery
from smallfleet.trace.writer import TraceWriter
from tests.conftest import make_app


def test_the_serving_routes_are_answered_without_fastapis_router(tmp_path: Path) -> None:
    """With their FastAPI routes taken out, chat completions and the Responses API are still served (the direct
    path), errors included; the other routes still go through FastAPI."""
    app = make_app([FakeBackend()], SQLiteTraceStore(tmp_path / "t.db"))
    app.router.routes = [r for r in app.router.routes if not (isinstance(r, APIRoute) and r.path in (
        "/v1/chat/completions", "/v1/responses"))]
    with TestClient(app) as client:
        ok = client.post("/v1/chat/completions", json={"model": "fake", "messages": [{"role": "user", "content": "hi"}]})
        assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "hi"
        assert client.post("/v1/responses", json={"model": "fake", "input": "hello"}).status_code == 200
        bad = client.post("/v1/chat/completions", json={"model": "fake", "messages": "nope"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "messages"
        assert bad.headers["x-smallfleet-trace-id"]  # a refused body is traced, as through FastAPI
        assert client.get("/v1/models").status_code == 200
        assert client.get("/v1/chat/completions").status_code in (404, 405)


def test_a_bug_in_a_serving_route_is_a_500_without_details_and_still_raised_to_the_server(tmp_path: Path) -> None:
    class Broken(FakeBackend):
        async def generate(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            raise ZeroDivisionError("secret detail")

    app = make_app([Broken()], SQLiteTraceStore(tmp_path / "t.db"))
    with TestClient(app, raise_server_exceptions=False) as client:
        reply = client.post("/v1/chat/completions", json={"model": "fake", "messages": [
            {"role": "user", "content": "hi"}]})
    assert reply.status_code == 500
    assert reply.json()["error"] == {"message": "internal server error", "type": "server_error", "param": None,
                                     "code": None}
    with TestClient(app) as client:  # (the server and its error hooks see the exception, as for any route)
        try:
            client.post("/v1/chat/completions", json={"model": "fake", "messages": [{"role": "user", "content": "x"}]})
        except ZeroDivisionError:
            pass
        else:
            raise AssertionError("the bug was swallowed")


class GatedStore:
    """A store whose commits wait for `gate`: a request is caught waiting for its trace's commit."""

    def __init__(self, inner: SQLiteTraceStore) -> None:
        self.inner, self.gate, self.ids = inner, threading.Event(), []

    def append_many(self, traces: list[Trace]) -> None:
        self.gate.wait(10)
        self.ids += [t.id for t in traces]
        self.inner.append_many(traces)


def test_a_stream_cancelled_while_its_trace_commits_is_traced_once(tmp_path: Path) -> None:
    """The client leaves after the last chunk, while the trace is being committed: the trace is already the
    writer's, so it is not queued again (a second row with its id would fail the whole batch it lands in)."""
    store = GatedStore(SQLiteTraceStore(tmp_path / "t.db"))
    writer = TraceWriter(store)
    chat = ChatService(Fleet.of_backends([FakeBackend()]), writer)

    async def run() -> None:
        reply = await chat.create(ChatCompletionRequest.model_validate(
            {"model": "fake", "stream": True, "messages": [{"role": "user", "content": "hello there"}]}))
        body = reply.body_iterator
        while True:
            step = asyncio.ensure_future(anext(body))
            done, _ = await asyncio.wait({step}, timeout=0.5)
            if not done:  # waiting for the commit
                break
        step.cancel()  # the client goes away
        try:
            await step
        except (asyncio.CancelledError, StopAsyncIteration):
            pass
        await body.aclose()

    asyncio.run(run())
    store.gate.set()
    writer.close()
    assert len(store.ids) == 1 and len(set(store.ids)) == 1
    assert len(store.inner.query(TraceQuery(limit=10))) == 1
