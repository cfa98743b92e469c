"""OpenAI chat completions request shape (pydantic), ordered like OpenAI's reference.

Unknown fields are ignored (agent frameworks send many), but every field we read is validated
with OpenAI's ranges, so a bad value is a 400 naming the parameter. Features we do not serve
(`n` > 1) are refused with a clear 400 rather than silently ignored. `response_format`, `tools`,
`tool_choice` and `parallel_tool_calls` become one `Constraint`. smallfleet's own extension
(`"smallfleet": {"choice" | "regex" | "grammar": ...}`) is fenced at the end of the request model.
"""

from __future__ import annotations

import re

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from smallfleet.backends.base import ChatMessage, SamplingParams, ToolCall
from smallfleet.constrain.spec import (
    ChoiceConstraint,
    Constraint,
    GrammarConstraint,
    JsonObjectConstraint,
    JsonSchemaConstraint,
    RegexConstraint,
    ToolsConstraint,
    ToolSpec,
)
from smallfleet.errors import InvalidRequest


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextPart(_Lenient):
    type: Literal["text"]
    text: str


class CalledFunction(_Lenient):
    name: str
    arguments: str


class MessageToolCall(_Lenient):
    id: str
    type: Literal["function"] = "function"
    function: CalledFunction


class Message(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[MessageToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _content_required(self) -> Message:
        if self.content is None and self.role != "assistant":
            raise ValueError(f"a {self.role} message needs 'content'")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs 'tool_call_id'")
        return self

    def to_internal(self) -> ChatMessage:
        if isinstance(self.content, list):
            text = "".join(p.text for p in self.content)
        else:
            text = self.content or ""
        role = "system" if self.role == "developer" else self.role
        calls = tuple(ToolCall(c.id, c.function.name, c.function.arguments) for c in self.tool_calls or [])
        return ChatMessage(role=role, content=text, tool_calls=calls,  # type: ignore[arg-type]
                           tool_call_id=self.tool_call_id)


class FunctionDef(_Lenient):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = ""
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Lenient):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(_Lenient):
    name: str


class NamedToolChoice(_Lenient):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(_Lenient):
    name: str = Field("response", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] | bool = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class TextFormat(_Lenient):
    type: Literal["text"]


class JsonObjectFormat(_Lenient):
    type: Literal["json_object"]


class JsonSchemaResponseFormat(_Lenient):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaResponseFormat, Field(discriminator="type")]


class SmallfleetExtension(_Lenient):
    """Constraints beyond OpenAI's: exactly one of a choice list, a regular expression, a Lark grammar."""

    choice: list[Annotated[str, Field(min_length=1)]] | None = Field(None, min_length=1)
    regex: str | None = Field(None, min_length=1)
    grammar: str | None = Field(None, min_length=1)

    def constraint(self) -> Constraint | None:
        given = [k for k in ("choice", "regex", "grammar") if getattr(self, k) is not None]
        if len(given) > 1:
            raise InvalidRequest(f"smallfleet: give one of choice, regex or grammar, not {' and '.join(given)}",
                                 param="smallfleet")
        if self.choice is not None:
            return ChoiceConstraint(options=tuple(dict.fromkeys(self.choice)))
        if self.regex is not None:
            return RegexConstraint(pattern=self.regex)
        if self.grammar is not None:
            return GrammarConstraint(lark=self.grammar)
        return None


class StreamOptions(_Lenient):
    include_usage: bool = False


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(value: Any, path: str = "body") -> str | None:  # noqa: ANN401 - parsed JSON
    """Where `value` holds a string with a lone UTF-16 surrogate (JSON's `"\\ud800"` alone): text no model,
    trace store or response can encode. None when there is none (a proper pair is one character already)."""
    keys = _lone_at(value)
    if keys is None:
        return None
    for key in reversed(keys):
        path += f".{key}" if isinstance(key, str) else f"[{key}]"
    return path


def _lone_at(value: Any) -> list[str | int] | None:  # noqa: ANN401 - parsed JSON
    """The keys leading to a lone surrogate, innermost first (a list is built only on a hit: the check runs on
    every request body); None when there is none."""
    if isinstance(value, str):
        return [] if _LONE_SURROGATE.search(value) else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)  # type: ignore[assignment]
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and _LONE_SURROGATE.search(key):
            return []
        found = _lone_at(item)
        if found is not None:
            found.append(key)
            return found
    return None


def refuse_lone_surrogates(data: Any) -> Any:  # noqa: ANN401 - a request body before validation
    where = lone_surrogate(data)
    if where is not None:
        raise ValueError(f"{where} holds a lone UTF-16 surrogate (an unpaired \\uD800-\\uDFFF escape): not valid "
                         "Unicode text")
    return data


class ChatCompletionRequest(_Lenient):
    """POST /v1/chat/completions."""

    @model_validator(mode="before")
    @classmethod
    def _valid_text(cls, data: Any) -> Any:  # noqa: ANN401 - the body before validation
        return refuse_lone_surrogates(data)

    messages: list[Message] = Field(min_length=1)
    model: str = Field(min_length=1)
    logprobs: bool = False
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    n: int = Field(1, ge=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_logprobs: int | None = Field(None, ge=0, le=20)
    top_p: float = Field(1.0, ge=0.0, le=1.0)
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool = True

    # --- smallfleet extensions (not in OpenAI's API) go below this line ---
    smallfleet: SmallfleetExtension | None = None

    @field_validator("stop")
    @classmethod
    def _stop_shape(cls, value: str | list[str] | None) -> str | list[str] | None:
        stops = [value] if isinstance(value, str) else (value or [])
        if len(stops) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        if any(s == "" for s in stops):
            raise ValueError("stop sequences must not be empty")
        return value

    def check_supported(self) -> None:
        """Refuse, with the parameter named, what is well-formed but not served."""
        if self.n != 1:
            raise InvalidRequest("only n=1 is supported", param="n")
        if self.top_logprobs and not self.logprobs:
            raise InvalidRequest("top_logprobs requires logprobs=true", param="top_logprobs")

    def constraint(self) -> Constraint | None:
        """The one output constraint this request asks for (or None for free text)."""
        extension = self.smallfleet.constraint() if self.smallfleet is not None else None
        structured = self._response_format_constraint()
        tools = self._tools_constraint()
        asked = [c for c in (extension, structured, tools) if c is not None]
        if len(asked) > 1:
            raise InvalidRequest("combine at most one of response_format, tools and the smallfleet extension",
                                 param="response_format" if structured is not None else "smallfleet")
        return asked[0] if asked else None

    def _response_format_constraint(self) -> Constraint | None:
        fmt = self.response_format
        if isinstance(fmt, JsonSchemaResponseFormat):
            schema = fmt.json_schema.schema_
            if schema is False:
                raise InvalidRequest("response_format.json_schema.schema: the schema 'false' admits no answer",
                                     param="response_format.json_schema.schema")
            return JsonSchemaConstraint(schema=schema if isinstance(schema, dict) else {}, name=fmt.json_schema.name)
        if isinstance(fmt, JsonObjectFormat):
            return JsonObjectConstraint()
        return None

    def _tools_constraint(self) -> Constraint | None:
        if not self.tools:
            if self.tool_choice is not None and self.tool_choice != "none":
                raise InvalidRequest("tool_choice needs a non-empty 'tools' list", param="tool_choice")
            return None
        names = [t.function.name for t in self.tools]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InvalidRequest(f"tool names must be unique; repeated: {', '.join(repeated)}", param="tools")
        specs = tuple(ToolSpec(name=t.function.name, description=t.function.description,
                               parameters=t.function.parameters or {"type": "object", "properties": {}})
                      for t in self.tools)
        choice = self.tool_choice or "auto"
        if choice == "none":
            return None
        if isinstance(choice, NamedToolChoice):
            picked = tuple(s for s in specs if s.name == choice.function.name)
            if not picked:
                raise InvalidRequest(f"tool_choice names {choice.function.name!r}, which is not in 'tools'",
                                     param="tool_choice")
            return ToolsConstraint(tools=picked, mode="required", parallel=False)
        return ToolsConstraint(tools=specs, mode=choice, parallel=self.parallel_tool_calls)

    def internal_messages(self) -> tuple[ChatMessage, ...]:
        return tuple(m.to_internal() for m in self.messages)

    def sampling(self) -> SamplingParams:
        stops = [self.stop] if isinstance(self.stop, str) else (self.stop or [])
        return SamplingParams(
            max_tokens=self.max_completion_tokens or self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=tuple(stops),
            seed=self.seed,
            top_logprobs=(self.top_logprobs or 0) if self.logprobs else 0,
        )

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)
