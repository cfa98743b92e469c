"""OpenAI chat completions request shape (pydantic), ordered like OpenAI's reference.

Unknown fields are ignored (agent frameworks send many), but every field we read is validated
with OpenAI's ranges, so a bad value is a 400 naming the parameter. Features we do not serve yet
(`n` > 1, tools, response_format) are refused with a clear 400 rather than silently ignored.
smallfleet's own extension fields will live under the fenced section at the end.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from smallfleet.backends.base import ChatMessage, SamplingParams
from smallfleet.errors import InvalidRequest


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextPart(_Lenient):
    type: Literal["text"]
    text: str


class Message(_Lenient):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _content_required(self) -> Message:
        if self.content is None and self.role != "assistant":
            raise ValueError(f"a {self.role} message needs 'content'")
        return self

    def to_internal(self) -> ChatMessage:
        if isinstance(self.content, list):
            text = "".join(p.text for p in self.content)
        else:
            text = self.content or ""
        role = "system" if self.role == "developer" else self.role
        return ChatMessage(role=role, content=text)  # type: ignore[arg-type]


class StreamOptions(_Lenient):
    include_usage: bool = False


class ChatCompletionRequest(_Lenient):
    """POST /v1/chat/completions."""

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
    tools: Any = None
    response_format: Any = None

    # --- smallfleet extensions (not in OpenAI's API) go below this line ---

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
        """Refuse, with the parameter named, what is well-formed but not served (yet)."""
        if self.n != 1:
            raise InvalidRequest("only n=1 is supported", param="n")
        if self.top_logprobs and not self.logprobs:
            raise InvalidRequest("top_logprobs requires logprobs=true", param="top_logprobs")
        if self.tools is not None:
            raise InvalidRequest("tool calling is not supported yet", param="tools")
        kind = self.response_format.get("type") if isinstance(self.response_format, dict) else self.response_format
        if kind not in (None, "text"):
            raise InvalidRequest("only response_format type 'text' is supported yet", param="response_format")

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
