"""What the OpenAPI schema says each route can answer, so that it is true (`tests/api/test_fuzz.py` checks every
answer against it with schemathesis): OpenAI's error shape for every error status the gateway sends, 400 (not
FastAPI's 422) for a malformed body, and SSE next to JSON where a route streams."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | int | None = None


class ErrorBody(BaseModel):
    """OpenAI's error shape."""

    error: ErrorDetail


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with the error body."""
    return {status: {"model": ErrorBody, "description": _WHY.get(status, "error")} for status in statuses}


_WHY = {400: "malformed request", 401: "missing, unknown or revoked API key", 403: "not allowed for this tenant",
        404: "not found", 413: "request body over the limit", 429: "busy, rate limited or out of budget",
        500: "a bug of ours", 502: "the model answered badly", 503: "the model or the ledger is unavailable",
        504: "the model did not answer in time"}
SERVING = errors(400, 401, 403, 404, 413, 429, 500, 502, 503, 504)
READING = errors(400, 401, 404, 413, 429)
STREAMED = {200: {"description": "the answer, as JSON or (with `stream: true`) server-sent events",
                  "content": {"application/json": {"schema": {"type": "object"}},
                              "text/event-stream": {"schema": {"type": "string"}}}}}


_REF = "#/components/schemas/{model}"


def body_of(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route that parses its own body (`api.parse.parsed_body`): the body's schema."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": _REF.format(model=model.__name__)}}}}}


def tidy(app: FastAPI, bodies: tuple[type[BaseModel], ...] = ()) -> None:
    """Drop FastAPI's 422 responses from the schema (validation errors are answered 400, `api.errors`), and add
    the schemas of `bodies`, the models of the routes that parse their own (`body_of`)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            if bodies:  # one schema for all of them: pydantic names classes that share a name apart
                refs, found = models_json_schema([(m, "validation") for m in bodies], ref_template=_REF)
                for name, definition in found.get("$defs", {}).items():
                    if name in components and components[name] != definition:
                        raise ValueError(f"OpenAPI component {name!r} is defined twice, differently")
                    components[name] = definition
                for model in bodies:  # the routes name the model by its class name; point them at its schema
                    wanted, given = _REF.format(model=model.__name__), refs[(model, "validation")]["$ref"]
                    if wanted != given:
                        components[model.__name__] = {"$ref": given}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
