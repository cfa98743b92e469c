"""Serving /v1/responses over the chat completions path: one code path under both surfaces.

A Responses request is read into the chat completions request it stands for (`responses_protocol`)
and served by the same `ChatService` / `RoutedChatService` (constraints, contracts, routing, the
guard, traces: nothing is copied). Their answer is then written in the Responses API's shape: the
completion body as a `response` object with `message` and `function_call` output items, a stream of
chat chunks as the documented events in order (`response.created`, `response.in_progress`,
`response.output_item.added`, `response.content_part.added`, `response.output_text.delta` ...
`response.function_call_arguments.delta` ... `response.completed`), errors in the same
`{"error": {...}}` shape.

`store` (default true) keeps the response and its conversation so `previous_response_id` continues it
and `GET /v1/responses/{id}` returns it. Responses of traffic whose data must not rest raw (a
`redact` / `local_only` policy without `guard.store_raw`) are kept in memory only (bounded, one hour),
never on disk; a tenant sees only its own.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.responses import Response

from smallfleet.api.errors import TRACE_HEADER, smallfleet_response, validation_to_invalid_request
from smallfleet.api.protocol import ChatCompletionRequest
from smallfleet.api.responses_protocol import ResponsesRequest
from smallfleet.errors import InvalidRequest, NotFound, SmallfleetError
from smallfleet.trace.store import TraceStore

Complete = Callable[[ChatCompletionRequest], Awaitable[Response]]  # the chat completions path, for one caller


@dataclass
class ResponseStore:
    """Stored responses: in the trace store, or in memory only for data that must not rest raw."""

    store: TraceStore
    memory_limit: int = 1000
    memory_ttl_s: float = 3600.0
    _memory: OrderedDict[str, tuple[float, str | None, str, str]] = field(default_factory=OrderedDict)

    async def put(self, response_id: str, tenant: str | None, items: list[dict[str, Any]], body: dict[str, Any],
                  at_rest: bool) -> None:
        items_text, body_text = json.dumps(items, ensure_ascii=False), json.dumps(body, ensure_ascii=False)
        if at_rest:  # off the event loop: on PostgreSQL this is a round trip
            await asyncio.to_thread(self.store.put_response, response_id, time.time(), tenant, items_text, body_text)
            return
        self._memory[response_id] = (time.monotonic(), tenant, items_text, body_text)
        while len(self._memory) > self.memory_limit:
            self._memory.popitem(last=False)

    async def get(self, response_id: str, tenant: str | None) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
        """(items, body, at rest) of a stored response this tenant may see; `NotFound` (404) otherwise. A
        conversation kept in memory only stays there when it is continued."""
        found = self._memory.get(response_id)
        if found is not None and time.monotonic() - found[0] > self.memory_ttl_s:
            del self._memory[response_id]
            found = None
        row = found[1:] if found is not None else await asyncio.to_thread(self.store.get_response, response_id)
        if row is None or row[0] != tenant:
            raise NotFound(f"no stored response with id {response_id!r}", param="previous_response_id")
        return json.loads(row[1]), json.loads(row[2]), found is None


class ResponsesService:
    """`POST /v1/responses` and `GET /v1/responses/{id}`."""

    def __init__(self, responses: ResponseStore,
                 refused: Callable[[ResponsesRequest, SmallfleetError, str | None], Awaitable[str | None]] | None = None
                 ) -> None:
        self._responses = responses
        self._refused = refused  # traces a request refused before it reaches the chat path

    async def create(self, req: ResponsesRequest, complete: Complete, tenant: str | None, at_rest: bool) -> Response:
        """Serve `req` through `complete` (the chat completions path for this caller). `at_rest`: whether this
        traffic may be stored on disk."""
        try:
            history: list[dict[str, Any]] = []
            if req.previous_response_id:
                history, _, history_at_rest = await self._responses.get(req.previous_response_id, tenant)
                at_rest = at_rest and history_at_rest
            chat = _chat_request(req, history)
        except SmallfleetError as exc:
            trace_id = await self._refused(req, exc, tenant) if self._refused is not None else None
            return smallfleet_response(exc, trace_id)
        answer = await complete(chat)
        if answer.status_code != 200:
            return answer  # the same OpenAI error shape on both surfaces
        trace_id = answer.headers.get(TRACE_HEADER, "")
        base = _base(req, f"resp_{trace_id}")
        items = [*history, *req.items()]
        headers = {k: v for k, v in answer.headers.items() if k.startswith("x-smallfleet-")}
        if not isinstance(answer, StreamingResponse):
            body = response_body(base, json.loads(bytes(answer.body)))
            await self._keep(req, tenant, items, body, at_rest)
            return JSONResponse(body, headers=headers)
        return StreamingResponse(self._events(base, answer.body_iterator, req, tenant, items, at_rest),
                                 media_type="text/event-stream", headers={**headers, "Cache-Control": "no-cache"})

    async def get(self, response_id: str, tenant: str | None) -> dict[str, Any]:
        try:
            return (await self._responses.get(response_id, tenant))[1]
        except NotFound:
            raise NotFound(f"no stored response with id {response_id!r}", param="response_id") from None

    async def _keep(self, req: ResponsesRequest, tenant: str | None, items: list[dict[str, Any]],
                    body: dict[str, Any], at_rest: bool) -> None:
        if req.store is not False and body["status"] in ("completed", "incomplete"):
            await self._responses.put(body["id"], tenant, [*items, *body["output"]], body, at_rest)

    async def _events(self, base: dict[str, Any], chunks: AsyncIterator[bytes], req: ResponsesRequest,
                      tenant: str | None, items: list[dict[str, Any]], at_rest: bool) -> AsyncIterator[bytes]:
        events = StreamEvents(base)
        async for event in events.translate(chunks):
            yield event
        if events.final is not None:
            await self._keep(req, tenant, items, events.final, at_rest)


def _chat_request(req: ResponsesRequest, history: list[dict[str, Any]]) -> ChatCompletionRequest:
    try:
        return req.to_chat(history)
    except ValidationError as exc:  # a value the chat path refuses: named as the caller wrote it (`input`)
        error = validation_to_invalid_request(RequestValidationError(exc.errors()))
        if error.param and error.param.startswith("messages"):
            error = InvalidRequest(f"input: {error.message.split(': ', 1)[-1]}", param="input")
        raise error from None


def _base(req: ResponsesRequest, response_id: str) -> dict[str, Any]:
    """The response object's fields that come from the request."""
    fmt = req.text.format if req.text is not None and req.text.format is not None else None
    text_format: dict[str, Any] = {"type": fmt.type if fmt is not None else "text"}
    if fmt is not None and fmt.type == "json_schema":
        text_format.update(name=fmt.name or "response", schema=fmt.schema_, strict=fmt.strict,
                           description=fmt.description)
    return {
        "id": response_id, "object": "response", "created_at": int(time.time()), "status": "in_progress",
        "error": None, "incomplete_details": None, "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens, "model": req.model, "output": [],
        "parallel_tool_calls": req.parallel_tool_calls is not False, "previous_response_id": req.previous_response_id,
        "reasoning": {"effort": None, "summary": None}, "store": req.store is not False,
        "temperature": 1.0 if req.temperature is None else req.temperature,
        "text": {"format": text_format}, "tool_choice": req.tool_choice or "auto",
        "tools": [t.model_dump(exclude_none=True) for t in req.tools or []], "top_p": 1.0 if req.top_p is None else req.top_p,
        "truncation": "disabled", "usage": None, "user": req.user, "metadata": req.metadata or {},
    }


def _usage(chat_usage: dict[str, int] | None) -> dict[str, Any] | None:
    if chat_usage is None:
        return None
    return {"input_tokens": chat_usage["prompt_tokens"], "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": chat_usage["completion_tokens"], "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": chat_usage["total_tokens"]}


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if status == "completed" else []
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name, "arguments": arguments,
            "status": status}


def _finish(finish_reason: str | None) -> dict[str, Any]:
    if finish_reason == "length":
        return {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    return {"status": "completed"}


def response_body(base: dict[str, Any], completion: dict[str, Any]) -> dict[str, Any]:
    """A chat completion as a Responses API `response` object."""
    choice = completion["choices"][0]
    message, stem = choice["message"], base["id"].removeprefix("resp_")
    output = []
    if message.get("content"):
        output.append(_message_item(f"msg_{stem}", message["content"]))
    for i, call in enumerate(message.get("tool_calls") or []):
        output.append(_call_item(f"fc_{stem}_{i}", call["id"], call["function"]["name"], call["function"]["arguments"]))
    body = {**base, **_finish(choice["finish_reason"]), "output": output, "usage": _usage(completion["usage"])}
    if body["status"] == "incomplete" and output:
        output[-1]["status"] = "incomplete"  # the item that was cut
    if "smallfleet" in completion:
        body["smallfleet"] = completion["smallfleet"]  # routing facts for contracts (not in OpenAI's API)
    return body


class StreamEvents:
    """Chat completion chunks (SSE) in, Responses API events (SSE) out, numbered in order."""

    def __init__(self, base: dict[str, Any]) -> None:
        self.base = base
        self.final: dict[str, Any] | None = None
        self._seq = 0
        self._stem = base["id"].removeprefix("resp_")
        self._output: list[dict[str, Any]] = []
        self._text: str | None = None  # the message item's text while it is open
        self._call: dict[str, Any] | None = None  # the function call item being streamed

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return f"event: {kind}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()

    async def translate(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        yield self._event("response.created", response=self.base)
        yield self._event("response.in_progress", response=self.base)
        finish, usage, extension = None, None, None
        buffer = ""
        async for raw in chunks:
            buffer += raw.decode() if isinstance(raw, bytes) else raw
            while "\n\n" in buffer:
                frame, buffer = buffer.split("\n\n", 1)
                data = frame.removeprefix("data: ").strip()
                if not data or data == "[DONE]":
                    continue
                chunk = json.loads(data)
                if "error" in chunk:  # a failure after the stream started: an error event, then response.failed
                    error = chunk["error"]
                    for event in self._close_all("incomplete"):
                        yield event
                    yield self._event("error", code=error.get("code"), message=error.get("message"),
                                      param=error.get("param"))
                    failed = {**self.base, "status": "failed", "output": self._output, "error": {
                        "code": chunk["error"].get("code") or "server_error", "message": chunk["error"]["message"]}}
                    yield self._event("response.failed", response=failed)
                    return
                usage = chunk.get("usage") or usage
                extension = chunk.get("smallfleet") or extension
                for choice in chunk.get("choices", []):
                    delta = choice.get("delta", {})
                    for event in self._delta(delta):
                        yield event
                    finish = choice.get("finish_reason") or finish
        for event in self._close_all("incomplete" if finish == "length" else "completed"):
            yield event
        final = {**self.base, **_finish(finish), "output": self._output, "usage": _usage(usage)}
        if extension is not None:
            final["smallfleet"] = extension
        self.final = final
        yield self._event("response.incomplete" if final["status"] == "incomplete" else "response.completed",
                          response=final)

    def _delta(self, delta: dict[str, Any]) -> list[bytes]:
        out = []
        text = delta.get("content")
        if text:
            if self._text is None:
                out += self._close_call()
                self._text = ""
                item = _message_item(f"msg_{self._stem}", "", "in_progress")
                out.append(self._event("response.output_item.added", output_index=len(self._output), item=item))
                out.append(self._event("response.content_part.added", item_id=item["id"],
                                       output_index=len(self._output), content_index=0,
                                       part={"type": "output_text", "text": "", "annotations": []}))
            self._text += text
            out.append(self._event("response.output_text.delta", item_id=f"msg_{self._stem}",
                                   output_index=len(self._output), content_index=0, delta=text, logprobs=[]))
        for call in delta.get("tool_calls") or []:
            function = call.get("function") or {}
            if call.get("id"):  # a new call starts
                out += self._close_text() + self._close_call()
                self._call = _call_item(f"fc_{self._stem}_{call.get('index', 0)}", call["id"],
                                        function.get("name", ""), "", "in_progress")
                out.append(self._event("response.output_item.added", output_index=len(self._output),
                                       item=dict(self._call)))
            arguments = function.get("arguments")
            if arguments and self._call is not None:
                self._call["arguments"] += arguments
                out.append(self._event("response.function_call_arguments.delta", item_id=self._call["id"],
                                       output_index=len(self._output), delta=arguments))
        return out

    def _close_text(self, status: str = "completed") -> list[bytes]:
        if self._text is None:
            return []
        item, index, text = _message_item(f"msg_{self._stem}", self._text), len(self._output), self._text
        item["status"] = status
        self._text = None
        self._output.append(item)
        return [self._event("response.output_text.done", item_id=item["id"], output_index=index, content_index=0,
                            text=text, logprobs=[]),
                self._event("response.content_part.done", item_id=item["id"], output_index=index, content_index=0,
                            part=item["content"][0]),
                self._event("response.output_item.done", output_index=index, item=item)]

    def _close_call(self, status: str = "completed") -> list[bytes]:
        if self._call is None:
            return []
        item, index = {**self._call, "status": status}, len(self._output)
        self._call = None
        self._output.append(item)
        return [self._event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                            name=item["name"], arguments=item["arguments"]),
                self._event("response.output_item.done", output_index=index, item=item)]

    def _close_all(self, status: str = "completed") -> list[bytes]:
        return self._close_text(status) + self._close_call(status)
