"""A request body parsed in one pass: pydantic reads the JSON text itself (`model_validate_json`), instead of
FastAPI's `json.loads` then a validation of the Python objects (measured: `bench gateway`, README). A body it
refuses is parsed again the slow way, only to name the problem exactly as before (a lone surrogate's place, the
first invalid field), and raised as FastAPI's `RequestValidationError`, so the one 400 handler (`api.errors`)
answers and traces it."""

from __future__ import annotations

import json
from typing import TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


async def parsed_body(request: Request, model: type[M]) -> M:
    body = await request.body()
    try:
        return model.model_validate_json(body)
    except ValidationError:
        pass
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # (RecursionError: nested too deeply)
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", getattr(exc, "pos", 0)),
                                       "msg": "JSON decode error", "input": {}, "ctx": {"error": str(exc)}}],
                                     body=body.decode("utf-8", "replace")) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)],
                                     body=data) from None
