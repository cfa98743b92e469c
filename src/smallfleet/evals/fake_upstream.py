"""A minimal OpenAI-compatible upstream with fixed latency, as a bare ASGI app (no framework).

It stands for "the backend called directly" in the gateway benchmark, and for a remote model in
tests of the HTTP backend. It is a simulation: it answers every chat completion with the same
text after `latency_s`, streamed or not, with per-token log-probs. `fail_status` makes it answer
errors instead, to exercise error mapping. A `responder` computes the answer from the request: the
content text, or a message dict `{"content": str | None, "tool_calls": [...]}` whose tool calls are
in OpenAI's shape (`{"id", "type": "function", "function": {"name", "arguments": JSON text}}`) and
are sent as they are (finish reason `tool_calls`; streamed as one delta per call).

Run: `python -m smallfleet.evals.fake_upstream --port 9001 --latency 0.05`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Reply = str | dict[str, Any]  # the content text, or a message: {"content": ..., "tool_calls": [...]}


@dataclass
class FakeUpstream:
    """ASGI app: POST /v1/chat/completions -> fixed answer after a fixed delay."""

    latency_s: float = 0.0
    text: str = "ok, done"
    fail_status: int | None = None
    responder: Callable[[dict[str, Any]], Reply] | None = None  # computes the answer from the request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"].rstrip("/").endswith("/v1/traces") and scope["method"] == "POST":  # an OTLP/HTTP sink
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/x-protobuf")]})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["path"].rstrip("/").endswith("/models"):
            await self._json(send, 200, {"object": "list", "data": [{"id": "fake-upstream", "object": "model"}]})
            return
        if not scope["path"].rstrip("/").endswith("/chat/completions") or scope["method"] != "POST":
            await self._json(send, 404, {"error": {"message": "not found", "type": "not_found_error"}})
            return
        request = json.loads(body or b"{}")
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self.fail_status is not None:
            err = {"error": {"message": f"simulated failure {self.fail_status}", "type": "server_error"}}
            await self._json(send, self.fail_status, err, {"retry-after": "2"} if self.fail_status == 429 else None)
            return
        reply = self.responder(request) if self.responder is not None else self.text
        text, calls = (reply, []) if isinstance(reply, str) else (reply.get("content") or "",
                                                                  list(reply.get("tool_calls") or []))
        tokens, finish = _truncate(text, request)
        if calls and finish == "stop":
            finish = "tool_calls"
        if request.get("stream"):
            await self._stream(send, request, tokens, finish, calls)
        else:
            await self._json(send, 200, self._completion(request, tokens, finish, calls))

    def _completion(self, request: dict[str, Any], tokens: list[str], finish: str,
                    calls: list[dict[str, Any]]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(tokens) if tokens or not calls else None}
        if calls:
            message["tool_calls"] = calls
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "fake-upstream"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": {"content": [_lp(t) for t in tokens]} if request.get("logprobs") else None,
                    "finish_reason": finish,
                }
            ],
            "usage": _usage(request, tokens, calls),
        }

    async def _stream(self, send: Send, request: dict[str, Any], tokens: list[str], finish: str,
                      calls: list[dict[str, Any]]) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": request.get("model", "fake-upstream")}
        for tok in tokens:
            choice = {"index": 0, "delta": {"content": tok}, "finish_reason": None,
                      "logprobs": {"content": [_lp(tok)]} if request.get("logprobs") else None}
            await _event(send, {**base, "choices": [choice]})
        for i, call in enumerate(calls):
            delta = {"tool_calls": [{"index": i, **call}]}
            await _event(send, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        await _event(send, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        await _event(send, {**base, "choices": [], "usage": _usage(request, tokens, calls)})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    @staticmethod
    async def _json(send: Send, status: int, payload: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})


def _usage(request: dict[str, Any], tokens: list[str], calls: list[dict[str, Any]] | None = None) -> dict[str, int]:
    """Token counts as a real server would roughly report them (about 4 characters a token)."""
    prompt = max(1, sum(len(str(m.get("content") or "")) for m in request.get("messages", [])) // 4)
    completion = len(tokens)  # one logprob entry per token, as a real server reports
    for call in calls or []:  # tool calls carry no logprobs; their name and arguments cost tokens all the same
        fn = call.get("function") or {}
        completion += max(1, (len(fn.get("name", "")) + len(fn.get("arguments", ""))) // 4)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _truncate(text: str, request: dict[str, Any]) -> tuple[list[str], str]:
    """Word tokens of `text`, cut by the request's `stop` and `max_tokens` like a real server would."""
    stops = request.get("stop") or []
    for stop in [stops] if isinstance(stops, str) else stops:
        if stop in text:
            text = text[: text.index(stop)]
    words = text.split(" ")
    tokens = [w if i == 0 else " " + w for i, w in enumerate(words)] if text else []
    limit = request.get("max_tokens") or request.get("max_completion_tokens")
    if limit is not None and len(tokens) > limit:
        return tokens[:limit], "length"
    return tokens, "stop"


def _lp(token: str) -> dict[str, Any]:
    return {"token": token, "logprob": -0.01, "bytes": list(token.encode()), "top_logprobs": []}


async def _event(send: Send, payload: dict[str, Any]) -> None:
    await send({"type": "http.response.body", "body": f"data: {json.dumps(payload)}\n\n".encode(), "more_body": True})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    uvicorn.run(FakeUpstream(latency_s=args.latency), host=args.host, port=args.port, log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main()
