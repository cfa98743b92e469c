"""Remote faults injected at the TCP level (evals.fault_upstream) through the whole gateway: connection resets,
truncated bodies and SSE streams, invalid JSON, 5xx bursts and stalls. Retries, fallback and the breaker behave
as documented, streams end with an error frame, and nothing hangs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from smallfleet.api.app import create_app
from smallfleet.config.fleet import FleetConfig
from smallfleet.evals.fault_upstream import FaultUpstream, running
from smallfleet.fleet import Fleet
from smallfleet.runtime import build_router
from smallfleet.trace.sqlite import SQLiteTraceStore


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[TestClient, FaultUpstream]]:
    upstream = FaultUpstream()
    with running(upstream) as base_url:
        config = FleetConfig.model_validate({
            "models": [{"id": "flaky", "kind": "openai", "base_url": base_url, "model": "fault", "timeout_s": 5},
                       {"id": "backup", "kind": "fake", "location": "remote"}],
            "contracts": [{"name": "answer", "ladder": [{"model": "flaky", "retries": 1, "timeout_s": 1.0},
                                                        {"model": "backup"}]}]})
        fleet = Fleet.from_config(config, home=tmp_path)
        app = create_app(fleet, SQLiteTraceStore(tmp_path / "traces.db"),
                         promotions=build_router(fleet, config, tmp_path))
        with TestClient(app) as client:
            yield client, upstream


def ask(client: TestClient, model: str = "answer", **extra: object):  # noqa: ANN201
    started = time.monotonic()
    reply = client.post("/v1/chat/completions", json={"model": model, "messages": [
        {"role": "user", "content": "how are you"}], **extra})
    return reply, time.monotonic() - started


def attempts(reply) -> list[tuple[str, str, str | None]]:  # noqa: ANN001
    return [(a["model"], a["status"], a.get("reason")) for a in reply.json()["smallfleet"]["attempts"]]


def test_a_reset_connection_is_retried_on_the_same_rung(gateway) -> None:  # noqa: ANN001
    client, upstream = gateway
    upstream.script.extend(["reset"])
    reply, _ = ask(client)
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == "fine, thanks"
    assert attempts(reply) == [("flaky", "accepted", None)] and upstream.served == {"reset": 1, "ok": 1}


@pytest.mark.parametrize("fault", ["invalid_json", "truncated", "status:500"])
def test_a_broken_answer_falls_back_to_the_next_rung(gateway, fault: str) -> None:  # noqa: ANN001
    client, upstream = gateway
    upstream.script.extend([fault, fault])
    reply, took = ask(client)
    assert reply.status_code == 200 and took < 5
    assert attempts(reply)[-1] == ("backup", "accepted", None) and attempts(reply)[0][1] == "failed"
    assert attempts(reply)[0][2].startswith("backend_error")


def test_a_stalled_upstream_times_out_and_falls_back_without_hanging(gateway) -> None:  # noqa: ANN001
    client, upstream = gateway
    upstream.script.extend(["slow:3", "slow:3"])
    reply, took = ask(client)
    assert reply.status_code == 200 and attempts(reply)[-1] == ("backup", "accepted", None)
    assert attempts(reply)[0][2] == "backend_error: backend_timeout" and took < 3.5  # two 1 s tries, then backup


def test_a_5xx_burst_opens_the_breaker_and_traffic_goes_around_it(gateway) -> None:  # noqa: ANN001
    client, upstream = gateway
    upstream.default = "status:503"
    replies = [ask(client)[0] for _ in range(8)]
    assert [r.status_code for r in replies] == [200] * 8
    reasons = [attempts(r)[0][2] for r in replies]
    assert all(r.startswith("backend_error") for r in reasons[:3]) and reasons[3:] == ["circuit_open"] * 5
    assert upstream.served == {"status:503": 6}  # 3 requests x (1 try + 1 retry), then no more calls
    gauge = [line for line in client.get("/metrics").text.splitlines()
             if line.startswith("smallfleet:circuit_breaker_state") and 'model_name="flaky"' in line]
    assert gauge and gauge[0].endswith(" 2.0")  # open (0 closed, 1 half-open, 2 open), on /metrics


@pytest.mark.parametrize("fault", ["truncated", "invalid_json", "reset"])
def test_a_broken_stream_ends_with_an_error_frame_not_done(gateway, fault: str) -> None:  # noqa: ANN001
    client, upstream = gateway
    upstream.script.append(fault)
    with client.stream("POST", "/v1/chat/completions", json={"model": "flaky", "stream": True, "messages": [
            {"role": "user", "content": "hi"}]}) as reply:
        lines = [line for line in reply.iter_lines() if line.startswith("data: ")]
        status = reply.status_code
    if status == 200:  # the stream had started: its last frame is the error, and there is no [DONE]
        assert lines and lines[-1] != "data: [DONE]" and "error" in json.loads(lines[-1][6:])
    else:  # it failed before the first byte: an ordinary OpenAI-shaped error
        assert status in (502, 503) and not lines


def test_direct_calls_map_each_fault_to_an_openai_error(gateway) -> None:  # noqa: ANN001
    client, upstream = gateway
    upstream.script.extend(["reset", "invalid_json", "status:503", "truncated", "ok"])
    statuses = [ask(client, "flaky")[0] for _ in range(5)]
    assert [r.status_code for r in statuses[:4]] == [503, 502, 503, 502] or all(
        r.status_code in (502, 503) for r in statuses[:4])
    assert all(r.json()["error"]["type"] for r in statuses[:4]) and statuses[4].status_code == 200
