"""Serving /v1/chat/completions: resolve the model, check the constraint, hold a slot, generate, answer, trace.

Streamed answers are Server-Sent Events of `chat.completion.chunk` objects ending in
`data: [DONE]`. The first event is pulled *before* the response starts, so errors a caller can
fix (context too long) and overload still get a real status code; a failure after the stream
started is sent as an error frame and the stream ends without `[DONE]`. A constraint is checked
(and refused if it cannot be enforced) before the request waits for a model. Every answer is
checked against its constraint; an answer that violates it (possible only from a remote or
unconstrained model) is an error, never passed on as valid. Every request leaves one trace.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from fastapi.responses import StreamingResponse
from starlette.responses import Response

from smallfleet.api.fastjson import FastJSONResponse
from smallfleet.api.errors import TRACE_HEADER, body_for, error_body, smallfleet_response
from smallfleet.api.protocol import ChatCompletionRequest
from smallfleet.backends.base import ChatMessage, Delta, Generation, SamplingParams, TokenLogprob, ToolCall
from smallfleet.constrain.compile import GrammarCache
from smallfleet.constrain.outcome import Outcome, settle
from smallfleet.constrain.remote import openai_fields
from smallfleet.constrain.schema_check import check_valid_schema
from smallfleet.constrain.spec import Constraint, JsonSchemaConstraint, ToolsConstraint
from smallfleet.errors import BackendError, SmallfleetError
from smallfleet.fleet import Fleet, FleetEntry
from smallfleet.guard.egress import egress_scope
from smallfleet.guard.redact import Redaction
from smallfleet.observe.logs import request_trace_id
from smallfleet.trace.record import Trace, new_trace_id, record_failure, record_success
from smallfleet.trace.writer import TraceWriter

log = logging.getLogger("smallfleet.api")

MODEL_HEADER = "x-smallfleet-model"


class InvalidOutput(BackendError):
    """A model's finished answer violates the request's constraint."""

    code = "invalid_output"


def logprobs_body(items: tuple[TokenLogprob, ...]) -> dict[str, Any]:
    return {
        "content": [
            {
                "token": lp.token,
                "logprob": lp.logprob,
                "bytes": list(lp.token.encode("utf-8")),
                "top_logprobs": [
                    {"token": t.token, "logprob": t.logprob, "bytes": list(t.token.encode("utf-8"))} for t in lp.top
                ],
            }
            for lp in items
        ],
        "refusal": None,
    }


def usage_body(gen: Generation) -> dict[str, int]:
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "total_tokens": gen.prompt_tokens + gen.completion_tokens,
    }


def tool_calls_body(calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls]


def finish_reason(gen: Generation, outcome: Outcome) -> str:
    return "tool_calls" if outcome.tool_calls and gen.finish_reason != "length" else gen.finish_reason


def _sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def constraint_param(constraint: Constraint) -> str:
    """The request parameter a constraint came from, for error messages."""
    return {"json_schema": "response_format.json_schema.schema", "json_object": "response_format",
            "tools": "tools"}.get(constraint.kind, f"smallfleet.{constraint.kind}")


@dataclass
class Call:
    """One prepared request: where it goes and what it asks."""

    req: ChatCompletionRequest
    entry: FleetEntry
    messages: tuple[ChatMessage, ...]
    params: SamplingParams
    constraint: Constraint | None
    trace: Trace
    started: float
    scrub: bool  # the policy in force when the request started keeps raw values out of its trace
    sent: list[Redaction]  # the table(s) the guard sent it out with: the trace is scrubbed with them too


class ChatService:
    """The chat completions endpoint's logic, independent of FastAPI routing."""

    def __init__(self, fleet: Fleet, traces: TraceWriter) -> None:
        self._fleet = fleet
        self._traces = traces
        self._grammars = GrammarCache()

    async def create(self, req: ChatCompletionRequest, tenant: str | None = None,
                     endpoint: str = "/v1/chat/completions", run_id: str | None = None) -> Response:
        """Answer `req` (for `tenant`, whose egress scope the caller has entered; `endpoint` as traced; `run_id`: the
        agent run it belongs to, from the `x-smallfleet-run-id` header)."""
        trace = Trace(
            tenant=tenant,
            run_id=run_id,
            id=new_trace_id(),
            created_at=time.time(),
            endpoint=endpoint,
            model=req.model,
            messages=[m.model_dump(exclude_none=True) for m in req.messages],
            params=req.model_dump(include=req.model_fields_set - {"messages", "model"}, by_alias=True),
            stream=req.stream,
        )
        request_trace_id.set(trace.id)  # log records made while serving it carry its id
        started = time.perf_counter()
        scrub, sent = self._fleet.guard.must_scrub(), []
        try:
            with egress_scope("allow", sent=sent):  # (the policy in force stays: a scope never loosens it)
                call = self._prepare(req, trace, started, scrub, sent)
                if req.stream:
                    return await self._start_stream(call)
                async with call.entry.admission.slot():
                    gen = await call.entry.backend.generate(call.messages, call.params, call.constraint)
            outcome = self._settle(call, gen)
        except SmallfleetError as exc:
            record_failure(trace, exc, started)
            await self._store(trace, scrub, sent)
            return smallfleet_response(exc, trace.id)
        record_success(trace, gen, started)  # (its cost was set when the answer was settled)
        await self._store(trace, scrub, sent)
        return FastJSONResponse(self._completion(call, gen, outcome), headers=self._headers(call))

    def _prepare(self, req: ChatCompletionRequest, trace: Trace, started: float, scrub: bool,
                 sent: list[Redaction]) -> Call:
        req.check_supported()
        entry = self._fleet.resolve(req.model)
        trace.backend_model = entry.info.id
        constraint = req.constraint()
        if constraint is not None:
            self._check_constraint(constraint, entry)
        return Call(req, entry, req.internal_messages(), req.sampling(), constraint, trace, started, scrub, sent)

    def _check_constraint(self, constraint: Constraint, entry: FleetEntry) -> None:
        """Refuse now (400) what cannot be enforced, before the request waits for a model."""
        param = constraint_param(constraint)
        if entry.info.location == "local":
            self._grammars.grammar(constraint, param)
            return
        # refuses constraints the server's structured-output API cannot take (a fake remote counts as openai)
        openai_fields(constraint, entry.info.id, getattr(entry.backend, "structured_outputs", "openai"))
        if isinstance(constraint, JsonSchemaConstraint):
            check_valid_schema(constraint.schema, param)
        elif isinstance(constraint, ToolsConstraint):
            for i, tool in enumerate(constraint.tools):
                check_valid_schema(tool.parameters, f"tools[{i}].function.parameters")

    @staticmethod
    def _settle(call: Call, gen: Generation) -> Outcome:
        """Check the answer against the constraint; a violation (not a cut) is an error. The answer is paid for
        either way."""
        call.trace.cost = call.entry.info.cost(gen)
        outcome = settle(call.constraint, gen.text, gen.finish_reason, gen.tool_calls)
        if not outcome.valid and gen.finish_reason != "length":
            call.trace.output = gen.text
            raise InvalidOutput(f"model {call.entry.info.id!r} returned an answer that violates the requested "
                                f"{call.constraint.kind if call.constraint else ''} constraint: {outcome.problem}")
        return outcome

    def _completion(self, call: Call, gen: Generation, outcome: Outcome) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": outcome.content, "refusal": None}
        if outcome.tool_calls:
            message["tool_calls"] = tool_calls_body(outcome.tool_calls)
        return {
            "id": f"chatcmpl-{call.trace.id}",
            "object": "chat.completion",
            "created": int(call.trace.created_at),
            "model": call.req.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": logprobs_body(gen.logprobs) if call.req.logprobs else None,
                    "finish_reason": finish_reason(gen, outcome),
                }
            ],
            "usage": usage_body(gen),
            "system_fingerprint": None,
        }

    async def _start_stream(self, call: Call) -> Response:
        stack = AsyncExitStack()
        try:
            await stack.enter_async_context(call.entry.admission.slot())
            events = call.entry.backend.stream(call.messages, call.params, call.constraint)
            stack.push_async_callback(events.aclose)  # type: ignore[attr-defined]
            first = await anext(events)
        except BaseException:
            await stack.aclose()
            raise
        return StreamingResponse(
            self._events(call, first, events, stack),
            media_type="text/event-stream",
            headers={**self._headers(call), "Cache-Control": "no-cache"},
        )

    async def _events(
        self, call: Call, first: Delta | Generation, events: AsyncIterator[Delta | Generation], stack: AsyncExitStack
    ) -> AsyncIterator[bytes]:
        req, trace = call.req, call.trace
        base = {"id": f"chatcmpl-{trace.id}", "object": "chat.completion.chunk", "created": int(trace.created_at),
                "model": req.model, "system_fingerprint": None}
        usage_field = {"usage": None} if req.include_usage() else {}
        # Backends stream only the text of an answer: tool calls (in whatever format the model writes
        # them) arrive parsed in the final Generation and are sent as tool_call deltas at the end.

        def chunk(delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
            return _sse({**base, "choices": [choice], **usage_field})

        finished = stored = False
        sent_chars = 0

        def queued() -> None:
            nonlocal stored
            stored = True
        try:
            yield chunk({"role": "assistant", "content": ""})
            event = first
            while isinstance(event, Delta):
                text, lps_items = event.text, event.logprobs
                sent_chars += len(text)
                lps = logprobs_body(lps_items) if req.logprobs and lps_items else None
                if text or lps:
                    yield chunk({"content": text}, logprobs=lps)
                event = await anext(events)
            gen = event
            outcome = self._settle(call, gen)
            for i, tc in enumerate(outcome.tool_calls):
                yield chunk({"tool_calls": [{"index": i, "id": tc.id, "type": "function",
                                             "function": {"name": tc.name, "arguments": ""}}]})
                yield chunk({"tool_calls": [{"index": i, "function": {"arguments": tc.arguments}}]})
            yield chunk({}, finish=finish_reason(gen, outcome))
            if req.include_usage():
                yield _sse({**base, "choices": [], "usage": usage_body(gen)})
            finished = True
            record_success(trace, gen, call.started)
            await self._store(trace, call.scrub, call.sent, queued)  # on disk before the client sees the end
            yield _sse("[DONE]")
        except SmallfleetError as exc:
            record_failure(trace, exc, call.started)
            await self._store(trace, call.scrub, call.sent, queued)
            yield _sse(body_for(exc))
        except StopAsyncIteration:
            exc = BackendError(f"{trace.backend_model}: stream ended without a final result")
            record_failure(trace, exc, call.started)
            await self._store(trace, call.scrub, call.sent, queued)
            yield _sse(body_for(exc))
        except Exception as exc:  # a bug of ours: report it in the stream, never a fake [DONE]
            log.exception("stream failed for trace %s", trace.id)
            record_failure(trace, exc, call.started)
            await self._store(trace, call.scrub, call.sent, queued)
            yield _sse(error_body("internal server error", "server_error"))
        finally:
            if not finished and trace.status == "ok":
                trace.status, trace.error_type = "error", "client_disconnected"
                trace.error_message = "the client went away before the stream finished"
                trace.latency_ms = (time.perf_counter() - call.started) * 1000
            await stack.aclose()
            if not stored:
                self._abandoned(call, sent_chars)
                self._traces.submit(trace)  # not awaited: we may be inside a cancellation

    @staticmethod
    def _abandoned(call: Call, sent_chars: int) -> None:
        """A stream cut short (the client left): no time to scrub, so nothing raw is kept under a redact /
        local_only policy; and the tokens already generated are still paid for (estimated at 4 characters per
        token, when the backend never reported them)."""
        trace = call.trace
        if call.scrub:
            trace.messages = [{"content": "[withheld: egress policy]"}]
            trace.output = None
        if trace.cost is None:
            prompt_chars = sum(len(m.content) for m in call.messages)
            trace.cost = call.entry.info.cost_of(-(-prompt_chars // 4), -(-sent_chars // 4))

    @staticmethod
    def _headers(call: Call) -> dict[str, str]:
        return {TRACE_HEADER: call.trace.id, MODEL_HEADER: call.entry.info.id}

    async def _store(self, trace: Trace, scrub: bool, sent: list[Redaction] | None = None,
                     queued: Callable[[], None] | None = None) -> None:
        """Write the trace; under a redact / local_only policy (`scrub`, fixed when the request started: a stream
        ends outside the caller's scope) with no raw values at rest: every value that was sent out as a
        placeholder is stored as that placeholder, and detection looks for more. `queued` is told the moment the
        writer has the trace (a stream cancelled while it waits for the commit must not queue it again: a
        second row with the same id would fail the whole batch it lands in)."""
        try:
            if scrub:
                await self._fleet.guard.scrub_trace(trace, known=sent[0] if sent else None)
            if queued is not None:
                queued()  # (append queues the trace before its first suspension point)
            await self._traces.append(trace)
        except Exception:  # the answer still goes out; the failure is loud in the log
            log.exception("could not store trace %s", trace.id)
