"""A request body parsed in one pass: pydantic reads the JSON text itself (`model_validate_json`), instead of
FastAPI's `json.loads` then a validation of the Python objects (measured: `bench gateway`, README). A body it
refuses is parsed again the slow way, only to name the problem as FastAPI did (a lone surrogate's place, the
first invalid field), and raised as FastAPI's `RequestValidationError`, so the one 400 handler (`api.errors`)
answers and traces it. As with FastAPI, only a JSON content type is read as JSON: a form post or text from a
web page never reaches a model."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from smallfleet.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)


def _json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _refused(kind: str, message: str, body: Any, loc: tuple[Any, ...] = ("body",),  # noqa: ANN401
             error: str | None = None) -> RequestValidationError:
    problem: dict[str, Any] = {"type": kind, "loc": loc, "msg": message, "input": body}
    if error is not None:
        problem["ctx"] = {"error": error}
    return RequestValidationError([problem], body=body)


async def parsed_body(request: Request, model: type[M]) -> M:
    try:
        body = await request.body()
    except ClientDisconnect:
        raise InvalidRequest("the client went away before its request body arrived") from None
    if not _json_type(request.headers.get("content-type", "")):
        raise _refused("model_attributes_type", "send it as JSON, with Content-Type: application/json", None)
    if not body.strip():
        raise _refused("missing", "Field required", None)
    try:
        return model.model_validate_json(body)
    except ValidationError:
        pass
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise _refused("json_invalid", "JSON decode error", {}, ("body", exc.pos), exc.msg) from None
    except (ValueError, RecursionError) as exc:  # (not UTF-8; nested too deeply)
        raise _refused("json_invalid", "JSON decode error", {},
                       error="nested too deeply" if isinstance(exc, RecursionError) else str(exc)) from None
    try:
        return model.model_validate(data, from_attributes=True)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)],
                                     body=data) from None
    except RecursionError:
        raise _refused("json_invalid", "JSON decode error", {}, error="nested too deeply") from None
