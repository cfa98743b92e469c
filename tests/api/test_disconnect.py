"""A client that leaves mid-stream frees the model slot within a second, on the real embedded model over a real
server; a slow client sending its body byte by byte does not hold up anyone else."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from smallfleet.api.app import create_app
from smallfleet.backends.embedded import embedded_gguf_path
from smallfleet.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from smallfleet.backends.fake import FakeBackend
from smallfleet.fleet import Fleet
from smallfleet.sim.serve import serve_in_thread
from smallfleet.trace.sqlite import SQLiteTraceStore
from smallfleet.trace.store import TraceQuery

STORY = {"role": "user", "content": "Write a very long story about a lighthouse keeper and the sea, in detail."}


def _running(url: str, model: str) -> int:
    return int(httpx.get(f"{url}/healthz", timeout=5).json()["models"][model]["running"])


@pytest.mark.model
def test_a_client_leaving_mid_stream_frees_the_real_model_within_a_second(tmp_path: Path) -> None:
    backend = LlamaCppBackend("smollm2-135m", LlamaCppOptions(path=embedded_gguf_path(), n_ctx=2048))
    store = SQLiteTraceStore(tmp_path / "traces.db")
    with serve_in_thread(create_app(Fleet.of_backends([backend]), store)) as url:
        with httpx.Client(timeout=60) as http:
            with http.stream("POST", f"{url}/v1/chat/completions", json={
                    "model": "smollm2-135m", "stream": True, "max_tokens": 1500, "messages": [STORY]}) as reply:
                chunks, busy = 0, 0
                lines = reply.iter_lines()
                for line in lines:
                    chunks += line.startswith("data:")
                    if chunks >= 8:
                        busy = _running(url, "smollm2-135m")  # generating when the client goes
                        break
                left = time.monotonic()
                lines.close()  # the client goes away: the connection is closed here
            assert busy == 1
        while _running(url, "smollm2-135m") and time.monotonic() - left < 10:
            time.sleep(0.01)
        freed_s = time.monotonic() - left
        started = time.monotonic()
        reply = httpx.post(f"{url}/v1/chat/completions", timeout=60, json={
            "model": "smollm2-135m", "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]})
        next_s = time.monotonic() - started
        traces = store.query(TraceQuery(limit=10))
    assert freed_s < 1.0, f"the slot was freed {freed_s:.2f} s after the client left"
    assert reply.status_code == 200 and next_s < 5
    assert [t.error_type for t in traces if t.stream] == ["client_disconnected"]


def test_a_slow_client_does_not_hold_up_the_others(tmp_path: Path) -> None:
    fake = FakeBackend(info=FakeBackend().info)
    store = SQLiteTraceStore(tmp_path / "traces.db")
    with serve_in_thread(create_app(Fleet.of_backends([fake]), store)) as url:
        host, port = url.removeprefix("http://").split(":")
        body = b'{"model": "%s", "messages": [{"role": "user", "content": "slow"}]}' % fake.info.id.encode()
        slow = []
        for _ in range(20):  # twenty clients that declare a body and send it one byte at a time
            s = socket.create_connection((host, int(port)))
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body[:5])
            slow.append(s)
        started = time.monotonic()
        with httpx.Client(timeout=10) as http:
            statuses = [http.post(f"{url}/v1/chat/completions", json={"model": fake.info.id, "messages": [
                {"role": "user", "content": f"fast {i}"}]}).status_code for i in range(50)]
        fast_s = time.monotonic() - started
        for s in slow:
            s.sendall(body[5:])
        answers = [s.recv(65536) for s in slow]
        for s in slow:
            s.close()
    assert statuses == [200] * 50 and fast_s < 5
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers)  # and the slow ones are answered in the end
