"""Turn any exception into an OpenAI-shaped error body with the right status. Done here only.

`{"error": {"message", "type", "param", "code"}}`. Caller mistakes are 400s naming the
parameter; overload is 429 with Retry-After; backend failures are 502/503/504; only a bug in
our own code is a 500, and it never leaks a traceback.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.responses import Response
from starlette.exceptions import HTTPException

from smallfleet.errors import InvalidRequest, Overloaded, SmallfleetError
from smallfleet.trace.record import Trace, new_trace_id, record_failure

log = logging.getLogger("smallfleet.api")

TRACE_HEADER = "x-smallfleet-trace-id"


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def body_for(exc: SmallfleetError) -> dict[str, Any]:
    return error_body(exc.message, exc.type, exc.param, exc.code)


def headers_for(exc: SmallfleetError, trace_id: str | None = None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if isinstance(exc, Overloaded):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if trace_id:
        headers[TRACE_HEADER] = trace_id
    return headers


def smallfleet_response(exc: SmallfleetError, trace_id: str | None = None) -> JSONResponse:
    return JSONResponse(body_for(exc), status_code=exc.status, headers=headers_for(exc, trace_id))


def validation_to_invalid_request(exc: RequestValidationError) -> InvalidRequest:
    """The first validation problem, as a 400 naming the parameter (`messages[0].role`)."""
    errors = exc.errors()
    if not errors:
        return InvalidRequest("invalid request body")
    err = errors[0]
    if err.get("type") == "json_invalid":
        return InvalidRequest(f"request body is not valid JSON: {err.get('ctx', {}).get('error', err['msg'])}")
    loc = [p for p in err.get("loc", ()) if p != "body"]
    param = ""
    previous: object = None
    for part in loc:
        if isinstance(part, int):
            param += f"[{part}]"
        elif not _is_union_label(part, previous):
            param += f".{part}" if param else str(part)
        previous = part
    if not loc and err.get("type") == "value_error":  # a check of the whole body (e.g. a lone surrogate)
        return InvalidRequest(err["msg"].removeprefix("Value error, "))
    if not loc:
        return InvalidRequest(f"request body must be a JSON object: {err['msg']}")
    message = err["msg"].removeprefix("Value error, ")
    return InvalidRequest(f"{param}: {message}" if param else message, param=param or None)


_SCALAR_LABELS = {"str", "int", "float", "bool", "constrained-int", "constrained-str", "function-after"}
_TAGGED_UNIONS = {"response_format": {"text", "json_object", "json_schema"}}


def _is_union_label(part: str, previous: object) -> bool:
    """Names pydantic adds to error locations for union branches, which the caller never wrote."""
    return (part in _SCALAR_LABELS or "[" in part or part[:1].isupper()
            or part in _TAGGED_UNIONS.get(str(previous), ()))


async def error_response(request: Request, exc: Exception) -> Response:
    """The answer to any exception a route raised: ours with their status, a refused body as a traced 400, the
    body limit's 413, a 404 or 405 from routing; anything else is a bug, logged, and a 500 without details."""
    if isinstance(exc, SmallfleetError):
        return smallfleet_response(exc)
    if isinstance(exc, RequestValidationError):
        error = validation_to_invalid_request(exc)
        return smallfleet_response(error, await trace_rejected(request, exc, error))
    if isinstance(exc, HTTPException):
        if exc.status_code == 413:  # the body limit (api.limits), found out as the body arrived
            return JSONResponse(error_body(str(exc.detail), "invalid_request_error", code="request_too_large"),
                                status_code=413)
        type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(str(exc.detail), type_), status_code=exc.status_code)
    log.error("unhandled error on %s", request.url.path, exc_info=exc)
    return JSONResponse(error_body("internal server error", "server_error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """`error_response` for every exception a FastAPI route raises."""
    for kind in (SmallfleetError, RequestValidationError, HTTPException, Exception):
        app.add_exception_handler(kind, error_response)


async def trace_rejected(request: Request, exc: RequestValidationError, error: InvalidRequest) -> str | None:
    """Record a request whose body we refused, so even malformed calls leave a trace."""
    writer = getattr(request.app.state, "traces", None)
    if writer is None:
        return None
    body = exc.body if isinstance(exc.body, dict) else {}
    model = body.get("model") if isinstance(body.get("model"), str) else ""
    caller = getattr(request.state, "caller", None)
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    stored_raw = getattr(request.app.state, "stored_raw", None)
    if stored_raw is not None and not stored_raw(model, caller):  # sensitive values are never kept raw
        messages = [{"content": "[withheld: egress policy]"}] if messages else []
        body = {k: "[withheld]" for k in body}  # (a Responses body holds its text in `input` and `instructions`)
    trace = Trace(id=new_trace_id(), created_at=time.time(), endpoint=request.url.path, model=model, status="error",
                  params={k: v for k, v in body.items() if k not in ("messages", "model")},
                  messages=messages, stream=bool(body.get("stream") is True),
                  tenant=caller.name if caller is not None else None)
    record_failure(trace, error, time.perf_counter())
    trace.latency_ms = None
    try:
        await writer.append(trace)
    except Exception:
        log.exception("could not store trace %s", trace.id)
        return None
    return trace.id
