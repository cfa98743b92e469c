"""JSON response bodies rendered by `smallfleet.jsontext` (orjson, with the standard library as its fallback)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from smallfleet.jsontext import dumps


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:  # noqa: ANN401
        return dumps(content).encode()
