"""Rewrites we apply to a JSON Schema before enforcing it: closed tool arguments, standard length bounds.

- `closed_arguments`: a tool's parameter schema allows only the declared properties unless it says
  otherwise. JSON Schema's default (`additionalProperties` absent = anything goes) lets a small model
  invent keys (`"required": [...]` inside the arguments); for tool arguments every object that
  declares `properties` and says nothing about extra keys gets `additionalProperties: false`.
  An explicit `additionalProperties` or `patternProperties` is kept as written. Objects composed
  with `allOf`/`anyOf`/`oneOf`/`$ref` beside their properties, the branches of those compositions
  and `$defs` are left as written (closing one part would reject the keys another part declares).
- `bounded_formats`: string formats bounded by their standards when the schema gives no tighter
  bound, so a model cannot fill an email address with digits until the token limit:
  email ≤ 254 characters with a local part ≤ 64 (RFC 5321), hostname ≤ 253 (RFC 1035), uri ≤ 2048
  (the common practical limit; RFC 3986 sets none).

Both return new schemas; the caller's schema is never modified. Validation of finished answers
uses the caller's schema (plus the closed-arguments rule for tools), so nothing valid is rejected
for a bound the caller did not ask for, except what the standards themselves forbid.
"""

from __future__ import annotations

from typing import Any

# Longest string the standard allows, per format.
FORMAT_MAX_LENGTH = {"email": 254, "hostname": 253, "uri": 2048}
# An email whose local part is at most 64 characters (RFC 5321 4.5.3.1.1), in Rust regex syntax.
EMAIL_PATTERN = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?" \
                r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"

_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "prefixItems")
_SUBSCHEMA_SINGLE = ("items", "additionalProperties")


def _walk(schema: Any, rewrite, composed: bool) -> Any:  # noqa: ANN001 - rewrite: dict -> dict
    """Apply `rewrite` to every subschema object, bottom-up, returning a new schema.

    With `composed=False` the walk does not enter `anyOf`/`oneOf`/`allOf` branches or `$defs`.
    """
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in _SUBSCHEMA_MAPS if composed else ("properties", "patternProperties"):
        if isinstance(out.get(key), dict):
            out[key] = {name: _walk(sub, rewrite, composed) for name, sub in out[key].items()}
    for key in _SUBSCHEMA_LISTS + ("allOf",) if composed else ("prefixItems",):
        if isinstance(out.get(key), list):
            out[key] = [_walk(sub, rewrite, composed) for sub in out[key]]
    for key in _SUBSCHEMA_SINGLE:
        if isinstance(out.get(key), dict):
            out[key] = _walk(out[key], rewrite, composed)
    return rewrite(out)


_COMPOSED = ("allOf", "anyOf", "oneOf", "$ref")


def _close(schema: dict[str, Any]) -> dict[str, Any]:
    open_ended = "additionalProperties" in schema or "patternProperties" in schema
    composed = any(k in schema for k in _COMPOSED)  # keys may be declared in the composed parts
    if "properties" in schema and not open_ended and not composed:
        return {**schema, "additionalProperties": False}
    return schema


def closed_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every object that declares properties closed to undeclared keys (unless it says so)."""
    return _walk(schema, _close, composed=False)


def _bound(schema: dict[str, Any]) -> dict[str, Any]:
    fmt = schema.get("format")
    limit = FORMAT_MAX_LENGTH.get(fmt) if isinstance(fmt, str) else None
    if limit is None:
        return schema
    out = dict(schema)
    if not isinstance(out.get("maxLength"), int) or out["maxLength"] > limit:
        out["maxLength"] = limit
    if fmt == "email" and "pattern" not in out:
        out.pop("format")
        out["pattern"] = EMAIL_PATTERN
    return out


def bounded_formats(schema: Any) -> Any:
    """`schema` with formats bounded by their standards (for enforcement during generation)."""
    return _walk(schema, _bound, composed=True)


def hoist_definitions(schema: Any, prefix: str) -> tuple[Any, dict[str, Any]]:
    """`schema` without its `$defs`/`definitions`, which come back renamed `prefix + name`, refs rewritten.

    A tool's parameters are embedded deep inside the calls schema, where `#/$defs/X` would no longer
    resolve; the definitions move to the calls schema's root under names that cannot clash between
    tools. A `$ref` to the parameters' own root (`#`) points at a copy kept as `prefix + "root"`.
    """
    if not isinstance(schema, dict):
        return schema, {}
    local = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    refers_to_root = False

    def rewrite(node: Any) -> Any:
        nonlocal refers_to_root
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: rewrite(v) for k, v in node.items() if k not in ("$defs", "definitions")}
        ref = node.get("$ref")
        if isinstance(ref, str):
            for base in ("#/$defs/", "#/definitions/"):
                if ref.startswith(base):
                    out["$ref"] = "#/$defs/" + prefix + ref[len(base):]
            if ref == "#":
                refers_to_root = True
                out["$ref"] = "#/$defs/" + prefix + "root"
        return out

    body = rewrite(schema)
    defs = {prefix + name: rewrite(sub) for name, sub in local.items()}
    if refers_to_root:
        defs[prefix + "root"] = body
    return body, defs
