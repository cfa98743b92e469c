"""Refuse, up front and precisely, any JSON Schema we cannot enforce token by token.

Two layers. First the schema must itself be a valid JSON Schema (Draft 2020-12 meta-schema, via
`jsonschema`). Then we walk it and name every keyword whose meaning we would not enforce, with
its location as a JSON pointer (`/properties/tags: 'uniqueItems' cannot be enforced`). Annotations
(`title`, `description`, `examples`, ...) and unknown non-standard keys carry no constraint and are
accepted. Whatever survives goes to llguidance, which refuses the rest (for example `oneOf`
branches it cannot prove disjoint) with its own message; nothing is silently loosened.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from smallfleet.errors import InvalidRequest

ENFORCED = {
    "type", "enum", "const", "properties", "required", "additionalProperties", "patternProperties",
    "items", "prefixItems", "minItems", "maxItems", "minLength", "maxLength", "pattern", "format",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "anyOf", "oneOf", "allOf",
    "$ref", "$defs", "definitions", "minProperties", "maxProperties",
}
ANNOTATIONS = {
    "$schema", "$id", "$anchor", "$comment", "$vocabulary", "title", "description", "examples", "default",
    "deprecated", "readOnly", "writeOnly", "contentEncoding", "contentMediaType", "x-guidance", "strict", "name",
}
NOT_ENFORCEABLE = {
    "uniqueItems", "contains", "minContains", "maxContains", "not", "if", "then", "else", "dependentRequired",
    "dependentSchemas", "dependencies", "propertyNames", "unevaluatedProperties", "unevaluatedItems",
    "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor", "contentSchema", "additionalItems",
}
FORMATS = {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid", "uri"}

# Keywords whose value is a map name -> subschema, a list of subschemas, or one subschema.
_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SINGLE = ("items", "additionalProperties")


def _pointer_part(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def unenforceable(schema: Any, where: str = "") -> list[str]:
    """Every problem found, as `location: message` lines (empty when the schema is enforceable)."""
    if isinstance(schema, bool):
        return []
    if not isinstance(schema, dict):
        return [f"{where or '/'}: a schema must be an object or a boolean"]
    problems = []
    for key in schema:
        if key in NOT_ENFORCEABLE:
            problems.append(f"{where or '/'}: keyword '{key}' cannot be enforced during generation")
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt not in FORMATS:
        problems.append(f"{where or '/'}: format '{fmt}' is not supported (supported: {', '.join(sorted(FORMATS))})")
    ref = schema.get("$ref")
    if isinstance(ref, str) and not ref.startswith("#"):
        problems.append(f"{where or '/'}: only local '$ref' (starting with '#') is supported, got '{ref}'")
    for key in _MAPS:
        value = schema.get(key)
        if isinstance(value, dict):
            for name, sub in value.items():
                problems += unenforceable(sub, f"{where}/{key}/{_pointer_part(name)}")
    for key in _LISTS:
        value = schema.get(key)
        if isinstance(value, list):
            for i, sub in enumerate(value):
                problems += unenforceable(sub, f"{where}/{key}/{i}")
    for key in _SINGLE:
        if key in schema and isinstance(schema[key], (dict, bool)):
            problems += unenforceable(schema[key], f"{where}/{key}")
    return problems


def check_valid_schema(schema: Any, param: str) -> None:
    """Raise `InvalidRequest` (HTTP 400, naming `param`) unless `schema` is a valid JSON Schema."""
    if not isinstance(schema, (dict, bool)):
        raise InvalidRequest(f"{param}: a JSON Schema must be an object", param=param)
    if schema is False:
        raise InvalidRequest(f"{param}: the schema 'false' admits no answer at all", param=param)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        location = "/" + "/".join(str(p) for p in exc.path) if exc.path else "/"
        raise InvalidRequest(f"{param}: not a valid JSON Schema at {location}: {exc.message}", param=param) from None


def check_schema(schema: Any, param: str) -> None:
    """Raise `InvalidRequest` (HTTP 400, naming `param`) unless `schema` is valid and enforceable."""
    check_valid_schema(schema, param)
    problems = unenforceable(schema)
    if problems:
        raise InvalidRequest(f"{param}: " + "; ".join(problems), param=param)
