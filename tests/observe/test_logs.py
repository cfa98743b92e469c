"""JSON log lines: each with the trace id, one `request` line per finished request, no message content."""

from __future__ import annotations

import json
import logging

from fastapi.testclient import TestClient

from smallfleet.api.app import create_app
from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend, FakeReply
from smallfleet.fleet import Fleet
from smallfleet.observe.logs import JsonFormatter, log_config, request_trace_id
from smallfleet.trace.sqlite import SQLiteTraceStore


def test_a_record_made_while_serving_carries_the_trace_id() -> None:
    token = request_trace_id.set("0190abc")
    try:
        record = logging.LogRecord("smallfleet.router", logging.WARNING, __file__, 1, "slow %s", ("rung",), None)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_trace_id.reset(token)
    assert line["trace_id"] == "0190abc" and line["message"] == "slow rung" and line["level"] == "warning"
    assert line["logger"] == "smallfleet.router" and line["ts"].endswith("Z")
    outside = json.loads(JsonFormatter().format(logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)))
    assert "trace_id" not in outside


def test_every_finished_request_logs_one_request_line(store: SQLiteTraceStore, caplog) -> None:  # noqa: ANN001
    small = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
    small.enqueue([FakeReply("fine", logprob=-0.1)])
    app = create_app(Fleet.of_backends([small]), store, log_requests=True)
    with caplog.at_level(logging.INFO, logger="smallfleet.requests"), TestClient(app) as client:
        ok = client.post("/v1/chat/completions", json={"model": "small", "messages": [
            {"role": "user", "content": "private words 991"}]})
        bad = client.post("/v1/chat/completions", json={"model": "nope", "messages": [
            {"role": "user", "content": "hi"}]})
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "smallfleet.requests"]
    by_id = {line["trace_id"]: line for line in lines}
    assert set(by_id) == {ok.headers["x-smallfleet-trace-id"], bad.headers["x-smallfleet-trace-id"]}
    first = by_id[ok.headers["x-smallfleet-trace-id"]]
    assert first["message"] == "request" and first["http_status"] == 200 and first["answered_by"] == "small"
    assert by_id[bad.headers["x-smallfleet-trace-id"]]["error_type"] == "model_not_found"
    assert not any("private words 991" in json.dumps(line) for line in lines)


def test_log_config_switches_the_formatter() -> None:
    assert log_config("json")["formatters"]["main"]["()"].endswith("JsonFormatter")
    assert "format" in log_config("text")["formatters"]["main"]
