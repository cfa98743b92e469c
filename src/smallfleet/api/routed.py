"""Serving a contract through /v1/chat/completions: `model` names the contract, the router answers.

The request's last user message is the contract's input; instructions, examples and the output
constraint come from the contract (a request that also sets `response_format`/`tools` is refused).
The answer says which rung answered and why, in the fenced `smallfleet` field of the body and in
`x-smallfleet-*` headers.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi.responses import StreamingResponse
from starlette.responses import Response

from smallfleet.api.fastjson import FastJSONResponse
from smallfleet.api.chat import finish_reason, logprobs_body, tool_calls_body, usage_body
from smallfleet.api.errors import TRACE_HEADER, smallfleet_response
from smallfleet.api.protocol import ChatCompletionRequest
from smallfleet.errors import InvalidRequest, SmallfleetError
from smallfleet.observe.logs import request_trace_id
from smallfleet.trace.record import Trace, new_trace_id, record_failure
from smallfleet.route.live import LiveSampler
from smallfleet.route.router import RouteResult, Router, no_answer
from smallfleet.trace.record import route_trace
from smallfleet.trace.writer import TraceWriter


def route_headers(result: RouteResult, trace_id: str) -> dict[str, str]:
    headers = {TRACE_HEADER: trace_id, "x-smallfleet-contract": result.contract,
               "x-smallfleet-cost": f"{result.cost:.6f}"}
    if result.rung is not None:
        headers["x-smallfleet-rung"] = str(result.rung)
        headers["x-smallfleet-model"] = result.model or ""
    if result.escalation_reason:
        headers["x-smallfleet-escalation-reason"] = result.escalation_reason
    if result.confidence is not None:
        headers["x-smallfleet-confidence"] = f"{result.confidence:.4f}"
    if result.cached is not None:  # exact or semantic: the answer came from the cache; miss; sensitive: bypassed
        headers["x-smallfleet-cache"] = result.cached
    return headers


class RoutedChatService:
    def __init__(self, router: Router, traces: TraceWriter, live: LiveSampler | None = None) -> None:
        self._router = router
        self._traces = traces
        self._live = live

    def serves(self, model: str) -> bool:
        return model in self._router.contracts

    async def create(self, req: ChatCompletionRequest, tenant: str | None = None,
                     endpoint: str = "/v1/chat/completions", run_id: str | None = None) -> Response:
        """Route `req` (for `tenant`, whose egress scope the caller has entered; `endpoint` as traced)."""
        created_at, started = time.time(), time.perf_counter()
        trace_id = new_trace_id()
        request_trace_id.set(trace_id)  # log records made while routing carry it
        try:
            text = self._input(req)
        except SmallfleetError as exc:  # refused before routing: still one trace
            trace = Trace(id=trace_id, created_at=created_at, endpoint=endpoint, model=req.model,
                          contract=req.model, messages=self._messages_for_trace(req), tenant=tenant, run_id=run_id)
            record_failure(trace, exc, started)
            await self._traces.append(trace)
            return smallfleet_response(exc, trace.id)
        try:
            result = await self._router.run(req.model, text)
        except SmallfleetError as exc:  # e.g. a grounded contract's empty knowledge base (503): traced, then answered
            trace = Trace(id=trace_id, created_at=created_at, endpoint=endpoint, model=req.model,
                          contract=req.model, messages=self._messages_for_trace(req), tenant=tenant, run_id=run_id)
            record_failure(trace, exc, started)
            await self._traces.append(trace)
            return smallfleet_response(exc, trace.id)
        trace = route_trace(result, text, endpoint, started, created_at,
                            self._router.fleet.guard.settings.store_raw, trace_id)
        trace.stream, trace.tenant, trace.run_id = req.stream, tenant, run_id
        await self._traces.append(trace)
        if self._live is not None:
            self._live.after(result, result.view or text, trace.id, tenant)  # background; the answer does not wait
        result = result.restored()  # the caller gets the values back; the trace keeps the placeholders
        if result.outcome is None or result.generation is None:
            error = no_answer(req.model, result)
            return smallfleet_response(error, trace.id)
        body = self._completion(req, result, trace.id, int(created_at))
        headers = route_headers(result, trace.id)
        if not req.stream:
            return FastJSONResponse(body, headers=headers)
        return StreamingResponse(self._as_stream(body, req.include_usage()), media_type="text/event-stream",
                                 headers=headers)

    def _messages_for_trace(self, req: ChatCompletionRequest) -> list[dict[str, Any]]:
        """A refused request's messages, withheld for contracts whose data must not be stored raw."""
        messages = [m.model_dump(exclude_none=True) for m in req.messages]
        policy = self._router.policy(req.model)
        if policy != "allow" and not self._router.fleet.guard.settings.store_raw:
            return [{"role": m.get("role"), "content": f"[withheld: egress {policy}]"} for m in messages]
        return messages

    @staticmethod
    def _input(req: ChatCompletionRequest) -> str:
        """The contract's input: the last user message. The output constraint is the contract's alone."""
        req.check_supported()
        if req.constraint() is not None:
            raise InvalidRequest(f"{req.model!r} is a contract: its output constraint comes from the contract",
                                 param="response_format")
        text = next((m.to_internal().content for m in reversed(req.messages) if m.role == "user"), None)
        if text is None:
            raise InvalidRequest("a contract request needs a user message with the input", param="messages")
        return text

    def _completion(self, req: ChatCompletionRequest, result: RouteResult, trace_id: str,
                    created: int) -> dict[str, Any]:
        gen, outcome = result.generation, result.outcome
        assert gen is not None and outcome is not None
        message: dict[str, Any] = {"role": "assistant", "content": outcome.content, "refusal": None}
        if outcome.tool_calls:
            message["tool_calls"] = tool_calls_body(outcome.tool_calls)
        return {
            "id": f"chatcmpl-{trace_id}", "object": "chat.completion", "created": created, "model": req.model,
            "choices": [{"index": 0, "message": message,
                         "logprobs": logprobs_body(gen.logprobs) if req.logprobs else None,
                         "finish_reason": finish_reason(gen, outcome)}],
            "usage": usage_body(gen), "system_fingerprint": None,
            # --- smallfleet extension (not in OpenAI's API) ---
            "smallfleet": {"contract": result.contract, "rung": result.rung, "model": result.model,
                           "escalation_reason": result.escalation_reason, "confidence": result.confidence,
                           "cost_usd": result.cost, "attempts": result.attempts_json()},
        }

    @staticmethod
    async def _as_stream(body: dict[str, Any], include_usage: bool):  # noqa: ANN205 - async bytes iterator
        """The routed answer as SSE chunks (routing decides on the whole answer, so it streams at the end)."""
        choice = body["choices"][0]
        base = {k: body[k] for k in ("id", "created", "model", "system_fingerprint")}
        base["object"] = "chat.completion.chunk"
        delta: dict[str, Any] = {"role": "assistant", "content": choice["message"]["content"]}
        if "tool_calls" in choice["message"]:
            delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(choice["message"]["tool_calls"])]
        chunks = [{**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]},
                  {**base, "choices": [{"index": 0, "delta": {}, "logprobs": None,
                                        "finish_reason": choice["finish_reason"]}], "smallfleet": body["smallfleet"]}]
        if include_usage:
            chunks.append({**base, "choices": [], "usage": body["usage"]})
        for chunk in chunks:
            yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()
        yield b"data: [DONE]\n\n"
