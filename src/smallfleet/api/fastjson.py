"""JSON response bodies rendered with orjson (measured: `bench gateway`, README), with the standard library
as the fallback for what orjson refuses (integer dict keys, lone surrogates, numbers past 64 bits)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import JSONResponse


def dumps(content: Any) -> bytes:  # noqa: ANN401 - any JSON value
    try:
        return orjson.dumps(content)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(content, separators=(",", ":")).encode()  # ASCII escapes: valid even for lone surrogates


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:  # noqa: ANN401
        return dumps(content)
