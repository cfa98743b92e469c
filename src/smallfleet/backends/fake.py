"""A deterministic, scripted backend for tests and the gateway benchmark.

Queue replies with `enqueue`; each call takes the next one (or echoes the last user message
when the queue is empty). Replies carry their own per-token log-probabilities, a fixed latency
before the first token, or an error to raise, so routing, API and trace code can be driven in
milliseconds without a model. Every call is recorded in `history`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from smallfleet.backends.base import (
    Backend,
    ChatMessage,
    Delta,
    Generation,
    ModelInfo,
    SamplingParams,
    Timings,
    TokenLogprob,
)
from smallfleet.backends.textstream import TextAssembler
from smallfleet.constrain.spec import Constraint, ToolsConstraint
from smallfleet.constrain.toolformat import SMALLFLEET_FORMAT, ToolAnswer
from smallfleet.errors import ContextLengthExceeded

_TOKEN = re.compile(r"\s*\S+|\s+")


@dataclass(frozen=True)
class FakeReply:
    """One scripted answer."""

    text: str
    logprob: float = -0.05
    error: Exception | None = None
    error_after_tokens: int | None = None


@dataclass
class FakeCall:
    """What the fake backend was asked."""

    messages: tuple[ChatMessage, ...]
    params: SamplingParams
    constraint: Constraint | None = None


@dataclass
class FakeBackend(Backend):
    """Scripted backend. `latency_s` is waited before the first token, `token_delay_s` between tokens."""

    info: ModelInfo = field(default_factory=lambda: ModelInfo(id="fake", location="local", context_window=4096))
    latency_s: float = 0.0
    token_delay_s: float = 0.0
    replies: deque[FakeReply] = field(default_factory=deque)
    history: list[FakeCall] = field(default_factory=list)

    def enqueue(self, replies: list[FakeReply | str]) -> None:
        """Queue answers for the next calls, in order."""
        self.replies.extend(r if isinstance(r, FakeReply) else FakeReply(text=r) for r in replies)

    def _next(self, messages: tuple[ChatMessage, ...]) -> FakeReply:
        if self.replies:
            return self.replies.popleft()
        last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        return FakeReply(text=last_user)

    async def stream(self, messages: tuple[ChatMessage, ...], params: SamplingParams,
                     constraint: Constraint | None = None) -> AsyncIterator[Delta | Generation]:
        """Scripted text regardless of `constraint`: it plays an unconstrained model whose answer must be checked."""
        started = time.perf_counter()
        self.history.append(FakeCall(messages=messages, params=params, constraint=constraint))
        reply = self._next(messages)
        if reply.error is not None and reply.error_after_tokens is None:
            raise reply.error
        prompt_tokens = sum(len(_TOKEN.findall(m.content)) for m in messages)
        window = self.info.context_window
        if window is not None and prompt_tokens + (params.max_tokens or 0) > window:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {window} tokens; the request needs "
                f"{prompt_tokens + (params.max_tokens or 0)}.", param="messages")
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        ttft = time.perf_counter() - started
        assembler = TextAssembler(stop=params.stop)
        # Under a tools constraint it writes calls in smallfleet's own format, like a local model would.
        tools = ToolAnswer(SMALLFLEET_FORMAT, constraint.mode) if isinstance(constraint, ToolsConstraint) else None
        logprobs: list[TokenLogprob] = []
        finish = "stop"
        for piece in _TOKEN.findall(reply.text):
            if reply.error is not None and len(logprobs) == reply.error_after_tokens:
                raise reply.error
            if params.max_tokens is not None and len(logprobs) >= params.max_tokens:
                finish = "length"
                break
            if self.token_delay_s:
                await asyncio.sleep(self.token_delay_s)
            lp = TokenLogprob(token=piece, logprob=reply.logprob)
            logprobs.append(lp)
            delta = assembler.push(piece.encode(), lp)
            for out in ([delta] if tools is None else tools.push(delta)) if delta is not None else []:
                yield out
            if assembler.stopped:
                break
        tail = assembler.finish()
        for out in ([tail] if tools is None else tools.push(tail)) if tail is not None else []:
            yield out
        calls: tuple = ()
        if tools is not None:
            held, calls = tools.finish(assembler.text)
            for out in held:
                yield out
        yield Generation(
            model=self.info.id,
            text=assembler.text,
            finish_reason=finish,  # type: ignore[arg-type]
            prompt_tokens=prompt_tokens,
            completion_tokens=len(logprobs),
            logprobs=tuple(logprobs),
            timings=Timings(ttft_s=ttft, total_s=time.perf_counter() - started),
            tool_calls=calls,
        )
