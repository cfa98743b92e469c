"""The one interface every model implements, local or remote, plus the records it returns.

A backend turns chat messages and sampling parameters into text. It streams `Delta`s and ends
with a `Generation` that carries everything routing needs later: per-token log-probabilities,
token counts, finish reason and timings. `generate` is `stream` consumed to the end unless a
backend has a cheaper non-streamed path (remote servers do).
"""

from __future__ import annotations

import abc
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from smallfleet.constrain.spec import Constraint

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length"]
Location = Literal["local", "remote"]


@dataclass(frozen=True)
class ToolCall:
    """One function call in OpenAI's shape (arguments as a JSON string)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation (assistant turns may carry tool calls; tool turns answer one)."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. Semantics follow OpenAI's chat completions (temperature 0 = greedy)."""

    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    top_logprobs: int = 0
    # Local models: describe the constraint (schema, tools) in the prompt. A specialist fine-tuned without
    # that text (`prompt: bare`) is served without it; the grammar enforces the shape either way.
    constraint_instructions: bool = True


@dataclass(frozen=True)
class TopLogprob:
    """An alternative token the model considered at one position."""

    token: str
    logprob: float


@dataclass(frozen=True)
class TokenLogprob:
    """The log-probability of one generated token under the model's (untempered) distribution."""

    token: str
    logprob: float
    top: tuple[TopLogprob, ...] = ()
    forced: bool = False  # inserted because the constraint allowed nothing else; carries no confidence


@dataclass(frozen=True)
class Delta:
    """A streamed piece of the answer: new text and the log-probs of the tokens that made it."""

    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class Timings:
    """Wall-clock figures of one generation, in seconds."""

    ttft_s: float
    total_s: float
    mask_ms: tuple[float, ...] = ()  # per sampled token, time spent computing and applying the constraint mask


@dataclass(frozen=True)
class Generation:
    """The complete result of one generation."""

    model: str
    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    logprobs: tuple[TokenLogprob, ...]
    timings: Timings
    tool_calls: tuple[ToolCall, ...] = ()  # the calls made: parsed from the model's own format, or a server's
    loop_steers: int = 0  # times the loop guard steered a constrained answer out of a repeating cycle

    @property
    def tokens_per_second(self) -> float:
        """Completion tokens over total wall time (0 when nothing was generated)."""
        return self.completion_tokens / self.timings.total_s if self.timings.total_s > 0 else 0.0


@dataclass(frozen=True)
class LogprobSummary:
    """Confidence figures over a generation's tokens, as stored in traces and used by routing."""

    count: int
    mean: float | None
    min: float | None

    @classmethod
    def of(cls, logprobs: tuple[TokenLogprob, ...]) -> LogprobSummary:
        values = [lp.logprob for lp in logprobs if not lp.forced and math.isfinite(lp.logprob)]
        if not values:
            return cls(count=0, mean=None, min=None)
        return cls(count=len(values), mean=sum(values) / len(values), min=min(values))


@dataclass(frozen=True)
class ModelInfo:
    """What the rest of the system needs to know about a model without running it."""

    id: str
    location: Location
    context_window: int | None
    owned_by: str = "smallfleet"
    price_per_1k_input: float = 0.0
    price_per_1k_output: float = 0.0
    concurrency: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    def cost(self, gen: Generation) -> float:
        """What answering `gen` cost at this model's prices (USD)."""
        return self.cost_of(gen.prompt_tokens, gen.completion_tokens)

    def cost_of(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.price_per_1k_input + completion_tokens * self.price_per_1k_output) / 1000


class Backend(abc.ABC):
    """A way to generate text. Implementations: embedded llama.cpp, OpenAI-compatible HTTP, fake."""

    info: ModelInfo

    @abc.abstractmethod
    def stream(
        self, messages: tuple[ChatMessage, ...], params: SamplingParams, constraint: Constraint | None = None
    ) -> AsyncIterator[Delta | Generation]:
        """Yield `Delta`s as text is produced, then exactly one final `Generation`.

        With a `constraint`, local engines make any other output impossible; remote ones pass it
        on (`response_format`, `tools`) and the caller checks the answer. Raises `InvalidRequest`
        subclasses before the first delta for requests the model cannot take (context too long),
        `BackendError` subclasses for engine or transport failures.
        """

    async def generate(
        self, messages: tuple[ChatMessage, ...], params: SamplingParams, constraint: Constraint | None = None
    ) -> Generation:
        """Run to completion and return the final `Generation`."""
        final: Generation | None = None
        async for event in self.stream(messages, params, constraint):
            if isinstance(event, Generation):
                final = event
        if final is None:  # pragma: no cover - a backend bug, not a caller error
            raise RuntimeError(f"backend {self.info.id} ended its stream without a Generation")
        return final

    async def aclose(self) -> None:
        """Release engines, threads and connections."""
