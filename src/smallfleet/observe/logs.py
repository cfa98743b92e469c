"""Logs as JSON lines (`smallfleet serve --log-format json`): one object per line, each with the trace id.

Every log record made while a request is served carries that request's trace id (`trace_id`, the id
`smallfleet traces show` takes; set by the services in `request_trace_id`), and every finished request
adds one `request` line (endpoint, model, status, latency, contract, rung, escalation reason) drawn from
its committed trace, so a log pipeline can join logs, traces and spans on one id. No message content is
logged.
"""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar
from typing import Any

from smallfleet.trace.record import Trace

# The trace id of the request being served on this task (None outside a request).
request_trace_id: ContextVar[str | None] = ContextVar("smallfleet_trace_id", default=None)
_REQUESTS = logging.getLogger("smallfleet.requests")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: time, level, logger, message, trace id, any `extra` fields, the exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        trace_id = getattr(record, "trace_id", None) or request_trace_id.get()
        if trace_id:
            out["trace_id"] = trace_id
        for key, value in vars(record).items():
            if key not in _STANDARD and key != "trace_id" and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def log_config(fmt: str, level: str = "info") -> dict[str, Any]:
    """A `logging.config.dictConfig` for the gateway (uvicorn's loggers included): `text` or `json` lines on
    stderr. uvicorn's access log is left off: the `request` lines replace it, with the trace id."""
    formatter = {"()": f"{__name__}.JsonFormatter"} if fmt == "json" else {
        "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    handler = {"class": "logging.StreamHandler", "formatter": "main", "stream": "ext://sys.stderr"}
    return {"version": 1, "disable_existing_loggers": False, "formatters": {"main": formatter},
            "handlers": {"main": handler},
            "loggers": {"smallfleet": {"handlers": ["main"], "level": level.upper(), "propagate": False},
                        "uvicorn": {"handlers": ["main"], "level": "WARNING", "propagate": False},
                        "uvicorn.error": {"handlers": ["main"], "level": "WARNING", "propagate": False}}}


def log_request(trace: Trace) -> None:
    """The `request` line of one committed trace (a trace writer observer)."""
    _REQUESTS.info("request", extra={
        "trace_id": trace.id, "endpoint": trace.endpoint, "model": trace.model, "status": trace.status,
        "http_status": trace.http_status, "latency_ms": round(trace.latency_ms, 1) if trace.latency_ms else None,
        "tenant": trace.tenant, "contract": trace.contract, "rung": trace.rung, "answered_by": trace.backend_model,
        "escalation_reason": trace.escalation_reason, "error_type": trace.error_type, "run_id": trace.run_id})
