"""The Responses API request (`POST /v1/responses`), read into the chat completions request it stands for.

Both surfaces share one serving path: a Responses request becomes a `ChatCompletionRequest` (input
items to messages, `instructions` to a system message, flat function tools to chat tools,
`text.format` to `response_format`, `max_output_tokens` to `max_tokens`), so constraints, contracts,
routing, the guard and traces behave the same. Fields we cannot honour are refused with a 400 naming
them (`include`, non-function tools, images and files in the input, `background`, `conversation`,
`prompt`, `truncation: auto`); fields that change nothing here (`metadata`, `user`, `reasoning`
without an effort, `prompt_cache_key`, `service_tier`, `safety_identifier`) are accepted.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from smallfleet.api.protocol import ChatCompletionRequest, refuse_lone_surrogates
from smallfleet.errors import InvalidRequest


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FunctionTool(_Lenient):
    type: str
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class TextFormat(_Lenient):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    description: str | None = None
    schema_: dict[str, Any] | bool | None = Field(None, alias="schema")
    strict: bool | None = None


class TextConfig(_Lenient):
    format: TextFormat | None = None
    verbosity: str | None = None


class Reasoning(_Lenient):
    effort: str | None = None
    summary: str | None = None


class ResponsesRequest(_Lenient):
    """POST /v1/responses (the fields smallfleet reads; unknown fields are ignored as on chat completions)."""

    @model_validator(mode="before")
    @classmethod
    def _valid_text(cls, data: Any) -> Any:  # noqa: ANN401 - the body before validation
        return refuse_lone_surrogates(data)

    model: str = Field(min_length=1)
    input: str | list[Any] = Field(min_length=1)  # items are checked one by one (`items_to_messages`)
    instructions: str | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None  # (null means the default, as in OpenAI's reference: true)
    text: TextConfig | None = None
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    stream: bool | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    reasoning: Reasoning | None = None
    include: list[str] | None = None
    background: bool | None = None
    conversation: Any = None
    prompt: Any = None
    truncation: Literal["auto", "disabled"] | None = None
    smallfleet: dict[str, Any] | None = None  # the chat extension (choice / regex / grammar), passed on as is

    def check_supported(self) -> None:
        """Refuse, naming the field, what is well-formed but not served."""
        for field, value in (("include", self.include), ("background", self.background),
                             ("conversation", self.conversation), ("prompt", self.prompt)):
            if value:
                raise InvalidRequest(f"{field} is not supported by this gateway", param=field)
        if self.truncation == "auto":
            raise InvalidRequest("truncation 'auto' is not supported: the input is never cut, a request over the "
                                 "context window is refused", param="truncation")
        if self.reasoning is not None and self.reasoning.effort not in (None, "none", "minimal"):
            raise InvalidRequest("reasoning effort is not supported by the models of this gateway",
                                 param="reasoning.effort")
        for i, tool in enumerate(self.tools or []):
            if tool.type != "function":
                raise InvalidRequest(f"tools[{i}].type: only function tools are supported, not {tool.type!r}",
                                     param=f"tools[{i}].type")
            if not tool.name:
                raise InvalidRequest(f"tools[{i}].name is required", param=f"tools[{i}].name")

    def items(self) -> list[dict[str, Any]]:
        """The input as a list of items (a string is one user message)."""
        if isinstance(self.input, str):
            return [{"type": "message", "role": "user", "content": self.input}]
        return [dict(item) if isinstance(item, dict) else item for item in self.input]

    def to_chat(self, history: list[dict[str, Any]]) -> ChatCompletionRequest:
        """The chat completions request this asks for, after `history` (the items of the conversation so far,
        from `previous_response_id`)."""
        self.check_supported()
        messages: list[dict[str, Any]] = []
        if self.instructions:
            messages.append({"role": "system", "content": self.instructions})
        messages += items_to_messages([*history, *self.items()], offset=-len(history))
        if not any(m["role"] != "system" for m in messages):
            raise InvalidRequest("input has no message to answer (only instructions or reasoning items)",
                                 param="input")
        body: dict[str, Any] = {
            "model": self.model, "messages": messages, "stream": bool(self.stream),
            "parallel_tool_calls": self.parallel_tool_calls is not False,
        }
        for key in ("temperature", "top_p"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        if self.stream:
            body["stream_options"] = {"include_usage": True}
        if self.max_output_tokens is not None:
            body["max_tokens"] = self.max_output_tokens
        if self.tools:
            body["tools"] = [{"type": "function", "function": {
                "name": t.name, "description": t.description or "",
                **({"parameters": t.parameters} if t.parameters is not None else {})}} for t in self.tools]
        if self.tool_choice is not None:
            body["tool_choice"] = _tool_choice(self.tool_choice)
        fmt = self.text.format if self.text is not None else None
        if fmt is not None and fmt.type == "json_schema":
            if fmt.schema_ is None:
                raise InvalidRequest("text.format.schema is required for a json_schema format",
                                     param="text.format.schema")
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": fmt.name or "response", "schema": fmt.schema_, "strict": fmt.strict}}
        elif fmt is not None and fmt.type == "json_object":
            body["response_format"] = {"type": "json_object"}
        if self.smallfleet is not None:
            body["smallfleet"] = self.smallfleet
        return ChatCompletionRequest.model_validate(body)


def _tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, str):
        return choice
    if choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    if choice.get("type") in ("none", "auto", "required"):
        return str(choice["type"])
    raise InvalidRequest("tool_choice: only 'none', 'auto', 'required' or {type: function, name} are supported",
                         param="tool_choice")


_ROLES = ("user", "system", "developer", "assistant")


def items_to_messages(items: list[dict[str, Any]], offset: int = 0) -> list[dict[str, Any]]:
    """Input items as chat messages: consecutive function calls become one assistant message with tool calls,
    each function call output a tool message. `offset` numbers the items in errors (`input[i]`)."""
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"input[{i + offset}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where} must be an object (a message or a function call item)", param=where)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in _ROLES:
                raise InvalidRequest(f"{where}.role must be one of {', '.join(_ROLES)}", param=f"{where}.role")
            messages.append({"role": role, "content": _text(item.get("content"), where)})
        elif kind == "function_call":
            arguments = item.get("arguments") or ""
            if not isinstance(arguments, str):
                raise InvalidRequest(f"{where}.arguments must be a JSON string", param=f"{where}.arguments")
            call = {"id": _required(item, "call_id", where), "type": "function",
                    "function": {"name": _required(item, "name", where), "arguments": arguments}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls") and not last["content"]:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append({"role": "tool", "tool_call_id": _required(item, "call_id", where),
                             "content": output if isinstance(output, str) else _text(output, f"{where}.output",
                                                                                     field="")})
        elif kind == "reasoning":
            continue  # a reasoning item from another model carries nothing these models can use
        else:
            raise InvalidRequest(f"{where}.type: items of type {kind!r} are not supported (message, function_call, "
                                 "function_call_output)", param=f"{where}.type")
    return messages


def _required(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{where}.{key} is required", param=f"{where}.{key}")
    return value


def _text(content: Any, where: str, field: str = ".content") -> str:
    """Message content: a string, or text parts (`input_text`, `output_text`); images and files are refused."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}{field} must be a string or a list of text parts", param=f"{where}{field}")
    parts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in ("input_text", "output_text", "text"):
            raise InvalidRequest(f"{where}{field}[{j}].type: only text parts are supported, not {kind!r}",
                                 param=f"{where}{field}[{j}].type")
        parts.append(str(part.get("text", "")))
    return "".join(parts)
