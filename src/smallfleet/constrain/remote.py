"""A constraint as a remote OpenAI-compatible server understands it, in the best form that server takes.

What a server can enforce depends on the structured-output API it speaks (`structured_outputs` on
an `openai` model in the fleet file):

- `openai` (default, portable: OpenAI, and any server that honours strict `response_format`):
  JSON Schema, JSON object and tools as OpenAI documents them. `choice` and `regex` have no OpenAI
  field, so they go out as a strict `json_schema` wrapping the answer in `{"answer": ...}` (an
  `enum`, or a string `pattern` anchored with `^(?:...)$`); the wrapper is taken off again on
  return (`unwrap`). A Lark `grammar` has no portable form: refused.
- `vllm` (vLLM >= 0.10.2): choice, regex and grammar as vLLM's own `structured_outputs` request
  object (`{"structured_outputs": {"choice"|"regex"|"grammar": ...}}`); the older top-level
  `guided_*` fields were removed in v0.12.0 and are silently ignored by newer servers.
- `vllm-legacy` (vLLM < 0.12): the same as top-level `guided_choice` / `guided_regex` /
  `guided_grammar` fields.
- `llama-server` (llama.cpp's server): choice as a GBNF `grammar` field (`root ::= "a" | "b"`);
  JSON Schema and tools as OpenAI's fields. It takes neither regular expressions nor Lark grammars:
  refused.

`remote_support` is the single table of what can be sent: the fleet file is checked with it at
load (a contract's remote rung must be able to enforce the contract's output), and requests are
checked with it before they wait for a model. Nothing is ever sent unconstrained.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from smallfleet.backends.base import TokenLogprob
from smallfleet.constrain.spec import (
    ChoiceConstraint,
    Constraint,
    GrammarConstraint,
    JsonObjectConstraint,
    JsonSchemaConstraint,
    RegexConstraint,
    ToolsConstraint,
)
from smallfleet.errors import InvalidRequest

StructuredOutputsAPI = Literal["openai", "vllm", "vllm-legacy", "llama-server"]
"""The structured-output API a remote server speaks."""

ANSWER_KEY = "answer"
"""The one property of the portable wrapper object: `{"answer": <the answer>}`."""

_LOCAL_OR_VLLM = "use a local model or structured_outputs: vllm"
_REFUSED: dict[tuple[str, str], str] = {
    ("grammar", "openai"): "OpenAI's API has no field for a grammar, so it can only be enforced by a local model "
                           "or a server with structured_outputs: vllm",
    ("regex", "llama-server"): "llama-server takes GBNF grammars and JSON schemas, not regular expressions; "
                               + _LOCAL_OR_VLLM,
    ("grammar", "llama-server"): "llama-server takes GBNF grammars, not Lark-style grammars; " + _LOCAL_OR_VLLM,
}


def remote_support(kind: str, api: str) -> str | None:
    """Why a `kind` constraint cannot be sent to a server speaking `api`, or None when it can."""
    return _REFUSED.get((kind, api))


def wraps_answer(constraint: Constraint | None, api: str) -> bool:
    """Whether `constraint` goes out wrapped in `{"answer": ...}` (and its answer must be unwrapped)."""
    return api == "openai" and isinstance(constraint, (ChoiceConstraint, RegexConstraint))


def openai_fields(constraint: Constraint | None, model_id: str, api: str = "openai") -> dict[str, Any]:
    """Request-body fields that carry `constraint` to a remote server speaking `api`.

    Raises `InvalidRequest` (HTTP 400) when that server cannot enforce it.
    """
    if constraint is None:
        return {}
    refused = remote_support(constraint.kind, api)
    if refused is not None:
        raise InvalidRequest(f"model {model_id!r} ({api} API) cannot enforce a {constraint.kind} constraint: "
                             f"{refused}", param="smallfleet")
    if isinstance(constraint, JsonSchemaConstraint):
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": constraint.name, "schema": constraint.schema}}}
    if isinstance(constraint, JsonObjectConstraint):
        return {"response_format": {"type": "json_object"}}
    if isinstance(constraint, ToolsConstraint):
        tools = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                    "parameters": constraint.arguments_schema(t)}}
                 for t in constraint.tools]
        choice: Any = constraint.mode
        if constraint.mode == "required" and len(constraint.tools) == 1:
            choice = {"type": "function", "function": {"name": constraint.tools[0].name}}
        return {"tools": tools, "tool_choice": choice, "parallel_tool_calls": constraint.parallel}
    if isinstance(constraint, ChoiceConstraint):
        return _choice_fields(constraint, api)
    if isinstance(constraint, RegexConstraint):
        return _regex_fields(constraint, api)
    if isinstance(constraint, GrammarConstraint):
        return _native(api, "grammar", constraint.lark)
    raise InvalidRequest(f"model {model_id!r}: unknown constraint {constraint!r}", param="smallfleet")


def _choice_fields(constraint: ChoiceConstraint, api: str) -> dict[str, Any]:
    if api == "llama-server":
        return {"grammar": choice_gbnf(constraint.options)}
    if api == "openai":
        return _wrapped({"type": "string", "enum": list(constraint.options)})
    return _native(api, "choice", list(constraint.options))


def _regex_fields(constraint: RegexConstraint, api: str) -> dict[str, Any]:
    if api == "openai":
        return _wrapped({"type": "string", "pattern": f"^(?:{constraint.pattern})$"})
    return _native(api, "regex", constraint.pattern)


def _native(api: str, key: str, value: Any) -> dict[str, Any]:
    """vLLM's own fields: `structured_outputs` since v0.10.2, top-level `guided_*` before v0.12.0."""
    if api == "vllm-legacy":
        return {f"guided_{key}": value}
    return {"structured_outputs": {key: value}}


def _wrapped(answer_schema: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "properties": {ANSWER_KEY: answer_schema}, "required": [ANSWER_KEY],
              "additionalProperties": False}
    return {"response_format": {"type": "json_schema",
                                "json_schema": {"name": ANSWER_KEY, "schema": schema, "strict": True}}}


_GBNF_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def gbnf_literal(text: str) -> str:
    """`text` as a GBNF string literal (llama.cpp's grammar parser: `\\\\`, `\\"`, `\\n`, `\\r`, `\\t`, `\\xHH`)."""
    out = []
    for ch in text:
        if ch in _GBNF_ESCAPES:
            out.append(_GBNF_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)  # the parser reads UTF-8 directly
    return '"' + "".join(out) + '"'


def choice_gbnf(options: tuple[str, ...]) -> str:
    """A GBNF grammar whose sentences are exactly `options`."""
    return "root ::= " + " | ".join(gbnf_literal(o) for o in options) + "\n"


# The whole object must be the wrapper: `{"answer": "<string>"}`, JSON whitespace allowed around tokens.
_WRAPPER = re.compile(r'\A\s*\{\s*"' + ANSWER_KEY + r'"\s*:\s*(".*")\s*\}\s*\Z', re.DOTALL)


def unwrap(text: str, logprobs: tuple[TokenLogprob, ...] = ()) -> tuple[str, tuple[TokenLogprob, ...]]:
    """The answer inside a portable wrapper `{"answer": "..."}`, with the wrapper's tokens marked forced.

    A reply that is not exactly the wrapper (not JSON, other keys, a non-string answer, cut by
    `max_tokens`) is returned unchanged, so the caller's check reports it invalid.
    """
    try:
        value = json.loads(text)
    except ValueError:
        return text, logprobs
    if not isinstance(value, dict) or set(value) != {ANSWER_KEY} or not isinstance(value[ANSWER_KEY], str):
        return text, logprobs
    return value[ANSWER_KEY], _mark_wrapper_forced(text, logprobs)


def _mark_wrapper_forced(text: str, logprobs: tuple[TokenLogprob, ...]) -> tuple[TokenLogprob, ...]:
    """Tokens that lie wholly outside the answer's characters were dictated by the wrapper schema:
    they carry no confidence (like forced tokens of a local grammar). Unchanged if tokens and text
    do not line up."""
    match = _WRAPPER.match(text)
    if match is None or "".join(lp.token for lp in logprobs) != text:
        return logprobs
    start, end = match.start(1) + 1, match.end(1) - 1  # inside the quotes
    out, pos = [], 0
    for lp in logprobs:
        token_start, pos = pos, pos + len(lp.token)
        inside = token_start < end and pos > start
        out.append(lp if inside or lp.forced else TokenLogprob(lp.token, lp.logprob, lp.top, forced=True))
    return tuple(out)
