"""Serving /v1/chat/completions: resolve the model, hold a slot, generate, answer, trace.

Streamed answers are Server-Sent Events of `chat.completion.chunk` objects ending in
`data: [DONE]`. The first event is pulled *before* the response starts, so errors a caller can
fix (context too long) and overload still get a real status code; a failure after the stream
started is sent as an error frame and the stream ends without `[DONE]`. Every request, answered
or not, leaves one trace.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse
from starlette.responses import Response

from smallfleet.api.errors import TRACE_HEADER, body_for, error_body, smallfleet_response
from smallfleet.api.protocol import ChatCompletionRequest
from smallfleet.backends.base import Delta, Generation, TokenLogprob
from smallfleet.errors import BackendError, SmallfleetError
from smallfleet.fleet import Fleet, FleetEntry
from smallfleet.trace.record import Trace, new_trace_id, record_failure, record_success
from smallfleet.trace.writer import TraceWriter

log = logging.getLogger("smallfleet.api")

MODEL_HEADER = "x-smallfleet-model"


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


def _sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


class ChatService:
    """The chat completions endpoint's logic, independent of FastAPI routing."""

    def __init__(self, fleet: Fleet, traces: TraceWriter) -> None:
        self._fleet = fleet
        self._traces = traces

    async def create(self, req: ChatCompletionRequest) -> Response:
        trace = Trace(
            id=new_trace_id(),
            created_at=time.time(),
            endpoint="/v1/chat/completions",
            model=req.model,
            messages=[m.model_dump(exclude_none=True) for m in req.messages],
            params=req.model_dump(include=req.model_fields_set - {"messages", "model"}),
            stream=req.stream,
        )
        started = time.perf_counter()
        try:
            req.check_supported()
            entry = self._fleet.resolve(req.model)
            trace.backend_model = entry.info.id
            if req.stream:
                return await self._start_stream(req, entry, trace, started)
            async with entry.admission.slot():
                gen = await entry.backend.generate(req.internal_messages(), req.sampling())
        except SmallfleetError as exc:
            record_failure(trace, exc, started)
            await self._store(trace)
            return smallfleet_response(exc, trace.id)
        record_success(trace, gen, started)
        await self._store(trace)
        return JSONResponse(self._completion(req, trace, gen), headers=self._headers(trace, entry))

    def _completion(self, req: ChatCompletionRequest, trace: Trace, gen: Generation) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{trace.id}",
            "object": "chat.completion",
            "created": int(trace.created_at),
            "model": req.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": gen.text, "refusal": None},
                    "logprobs": logprobs_body(gen.logprobs) if req.logprobs else None,
                    "finish_reason": gen.finish_reason,
                }
            ],
            "usage": usage_body(gen),
            "system_fingerprint": None,
        }

    async def _start_stream(
        self, req: ChatCompletionRequest, entry: FleetEntry, trace: Trace, started: float
    ) -> Response:
        stack = AsyncExitStack()
        try:
            await stack.enter_async_context(entry.admission.slot())
            events = entry.backend.stream(req.internal_messages(), req.sampling())
            stack.push_async_callback(events.aclose)  # type: ignore[attr-defined]
            first = await anext(events)
        except BaseException:
            await stack.aclose()
            raise
        return StreamingResponse(
            self._events(req, trace, started, first, events, stack),
            media_type="text/event-stream",
            headers={**self._headers(trace, entry), "Cache-Control": "no-cache"},
        )

    async def _events(
        self,
        req: ChatCompletionRequest,
        trace: Trace,
        started: float,
        first: Delta | Generation,
        events: AsyncIterator[Delta | Generation],
        stack: AsyncExitStack,
    ) -> AsyncIterator[bytes]:
        base = {"id": f"chatcmpl-{trace.id}", "object": "chat.completion.chunk", "created": int(trace.created_at),
                "model": req.model, "system_fingerprint": None}
        usage_field = {"usage": None} if req.include_usage() else {}

        def chunk(delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
            return _sse({**base, "choices": [choice], **usage_field})

        finished = False
        try:
            yield chunk({"role": "assistant", "content": ""})
            event = first
            while isinstance(event, Delta):
                lps = logprobs_body(event.logprobs) if req.logprobs else None
                if event.text or lps:
                    yield chunk({"content": event.text}, logprobs=lps)
                event = await anext(events)
            gen = event
            yield chunk({}, finish=gen.finish_reason)
            if req.include_usage():
                yield _sse({**base, "choices": [], "usage": usage_body(gen)})
            yield _sse("[DONE]")
            finished = True
            record_success(trace, gen, started)
        except SmallfleetError as exc:
            record_failure(trace, exc, started)
            yield _sse(body_for(exc))
        except StopAsyncIteration:
            exc = BackendError(f"{trace.backend_model}: stream ended without a final result")
            record_failure(trace, exc, started)
            yield _sse(body_for(exc))
        except Exception as exc:  # a bug of ours: report it in the stream, never a fake [DONE]
            log.exception("stream failed for trace %s", trace.id)
            record_failure(trace, exc, started)
            yield _sse(error_body("internal server error", "server_error"))
        finally:
            if not finished and trace.status == "ok":
                trace.status, trace.error_type = "error", "client_disconnected"
                trace.error_message = "the client went away before the stream finished"
                trace.latency_ms = (time.perf_counter() - started) * 1000
            await stack.aclose()
            self._traces.submit(trace)  # not awaited: we may be inside a cancellation

    @staticmethod
    def _headers(trace: Trace, entry: FleetEntry) -> dict[str, str]:
        return {TRACE_HEADER: trace.id, MODEL_HEADER: entry.info.id}

    async def _store(self, trace: Trace) -> None:
        try:
            await self._traces.append(trace)
        except Exception:  # the answer still goes out; the failure is loud in the log
            log.exception("could not store trace %s", trace.id)
