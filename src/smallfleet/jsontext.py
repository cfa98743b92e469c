"""JSON text on the hot path (response bodies, upstream request and response bodies, trace rows): orjson,
measured faster in `bench gateway` (README), with the standard library for what orjson refuses (lone
surrogates, integer dict keys, integers past 64 bits, NaN)."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any, *, ascii_fallback: bool = True) -> str:  # noqa: ANN401 - any JSON value
    """Compact JSON text. The fallback escapes non-ASCII (`ascii_fallback`: the text then encodes as UTF-8 even
    with a lone surrogate in it) or keeps it (a caller that cleans surrogates itself)."""
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, ensure_ascii=ascii_fallback, separators=(",", ":"))


def loads(text: str | bytes) -> Any:  # noqa: ANN401 - any JSON value
    """Parse JSON text; what orjson refuses is parsed by the standard library, which raises its own
    `json.JSONDecodeError` for text that is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
