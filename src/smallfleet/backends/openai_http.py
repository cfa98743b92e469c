"""Remote backend: any OpenAI-compatible chat completions server (vLLM, llama-server, Ollama, hosted APIs).

Configured with a base URL, the server's model name and the *name* of the environment variable
holding the key (the key itself never sits in the fleet file). Uses aiohttp: measured here at
100 concurrent requests against a 100 ms upstream, httpx's AsyncClient managed 83 requests/s
(p99 5 s, its pool is a known bottleneck, encode/httpx#3215) where aiohttp managed 914 (p99 121 ms).

Transport problems are turned into our exceptions where the call is made (`_normalised_errors`), so callers see one hierarchy:
connection failures and upstream 502/503/504 -> `BackendUnavailable` (transient: the router retries them),
timeouts -> `BackendTimeout`, upstream 429 -> `Overloaded`, upstream 400 -> `InvalidRequest`, a stream that
stops without a finish reason or `[DONE]` and anything else -> `BackendError`.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncio

import aiohttp

from smallfleet.backends.base import (
    Backend,
    ChatMessage,
    Delta,
    Generation,
    ModelInfo,
    SamplingParams,
    Timings,
    TokenLogprob,
    ToolCall,
    TopLogprob,
)
from smallfleet.constrain.toolformat import new_call_id
from smallfleet.constrain.remote import openai_fields, unwrap, wraps_answer
from smallfleet.constrain.spec import Constraint
from smallfleet.jsontext import dumps, loads
from smallfleet.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    InvalidRequest,
    Overloaded,
    SmallfleetError,
)


@dataclass(frozen=True)
class OpenAIHTTPOptions:
    """Where and how to reach the server."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0
    connect_timeout_s: float = 5.0
    logprobs: bool = True
    max_connections: int = 200
    structured_outputs: str = "openai"  # the server's structured-output API (smallfleet.constrain.remote)


class OpenAIHTTPBackend(Backend):
    """Chat completions over HTTP."""

    def __init__(self, info: ModelInfo, options: OpenAIHTTPOptions) -> None:
        self.info = info
        self._options = options
        self._url = options.base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    @property
    def structured_outputs(self) -> str:
        """The structured-output API the server speaks: how constraints are sent to it."""
        return self._options.structured_outputs

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use, and again under a new event loop: a session belongs to the loop that runs it.
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            self._session_loop = loop
            self._session = aiohttp.ClientSession(
                headers=self._headers, json_serialize=dumps,
                timeout=aiohttp.ClientTimeout(total=self._options.timeout_s,
                                              sock_connect=self._options.connect_timeout_s),
                connector=aiohttp.TCPConnector(limit=self._options.max_connections),
            )
        return self._session

    def _body(self, messages: tuple[ChatMessage, ...], params: SamplingParams, stream: bool,
              constraint: Constraint | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._options.model,
            "messages": [_message(m) for m in messages],
            **openai_fields(constraint, self.info.id, self._options.structured_outputs),
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": stream,
        }
        if params.max_tokens is not None:
            body["max_tokens"] = params.max_tokens
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if self._options.logprobs:
            body["logprobs"] = True
            if params.top_logprobs:
                body["top_logprobs"] = params.top_logprobs
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    @asynccontextmanager
    async def _normalised_errors(self) -> AsyncIterator[None]:
        where = f"{self.info.id} ({self._options.base_url})"
        try:
            yield
        except SmallfleetError:
            raise
        except (TimeoutError, asyncio.TimeoutError) as exc:
            raise BackendTimeout(f"{where} did not answer within {self._options.timeout_s:g}s") from exc
        except aiohttp.ClientConnectorError as exc:  # never connected: nothing was sent, nothing billed
            error = BackendUnavailable(f"cannot reach {where}: {exc or type(exc).__name__}")
            error.unbilled = True
            raise error from exc
        except aiohttp.ClientConnectionError as exc:  # the connection broke after the request went out
            raise BackendUnavailable(f"lost the connection to {where}: {exc or type(exc).__name__}") from exc
        except (aiohttp.ClientError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise BackendError(f"{where} sent a response that is not a chat completion: {exc}") from exc

    async def _raise_for_status(self, response: aiohttp.ClientResponse) -> None:
        """An error status as our exception, marked unbilled (an upstream answering an error generated nothing)."""
        if response.status < 400:
            return
        try:
            await self._raise_status(response)
        except SmallfleetError as exc:
            exc.unbilled = True
            raise

    async def _raise_status(self, response: aiohttp.ClientResponse) -> None:
        text = await response.text(errors="replace")
        try:
            detail = json.loads(text)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            detail = text[:300]
        message = f"{self.info.id}: upstream answered {response.status}: {detail}"
        if response.status == 429:
            try:
                retry_after = float(response.headers.get("retry-after", "1"))
            except ValueError:
                retry_after = 1.0
            raise Overloaded(message, retry_after=retry_after)
        if response.status == 400:
            raise InvalidRequest(message)
        if response.status in (502, 503, 504):  # the server (or a proxy before it) says: not now, try again
            raise BackendUnavailable(message)
        raise BackendError(message)

    async def generate(self, messages: tuple[ChatMessage, ...], params: SamplingParams,
                       constraint: Constraint | None = None) -> Generation:
        started = time.perf_counter()
        body = self._body(messages, params, False, constraint)
        async with self._normalised_errors():
            async with self._client().post(self._url, json=body) as response:
                await self._raise_for_status(response)
                # (orjson reads UTF-8 bytes; a body in another charset is decoded first)
                data = loads(await response.read()) if response.charset in (None, "utf-8", "utf8") else \
                    loads(await response.text())
            choice = data["choices"][0]
            usage = data.get("usage") or {}
            logprobs = tuple(_parse_logprobs(choice.get("logprobs")))
            text = choice["message"].get("content") or ""
            if wraps_answer(constraint, self._options.structured_outputs):
                text, logprobs = unwrap(text, logprobs)
            elapsed = time.perf_counter() - started
            return Generation(
                model=self.info.id,
                text=text,
                tool_calls=tuple(_parse_tool_calls(choice["message"].get("tool_calls"))),
                finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", len(logprobs))),
                logprobs=logprobs,
                timings=Timings(ttft_s=elapsed, total_s=elapsed),
            )

    async def stream(self, messages: tuple[ChatMessage, ...], params: SamplingParams,
                     constraint: Constraint | None = None) -> AsyncIterator[Delta | Generation]:
        started = time.perf_counter()
        body = self._body(messages, params, True, constraint)
        # A wrapped answer ({"answer": ...}) is held back and sent unwrapped, as one delta, at the end.
        wrapped = wraps_answer(constraint, self._options.structured_outputs)
        calls: dict[int, dict[str, str]] = {}
        first: float | None = None
        text: list[str] = []
        logprobs: list[TokenLogprob] = []
        finish = "stop"
        usage: dict[str, Any] = {}
        complete = False  # a `[DONE]` or a finish reason came: an upstream that just stops is a broken stream
        async with self._normalised_errors():
            async with self._client().post(self._url, json=body) as response:
                await self._raise_for_status(response)
                async for raw_line in response.content:
                    line = raw_line.decode("utf-8", errors="replace")
                    complete = complete or line.strip() == "data: [DONE]"
                    for chunk in _sse_data(line):
                        if "error" in chunk:
                            raise BackendError(f"{self.info.id}: upstream stream failed: {chunk['error']}")
                        usage = chunk.get("usage") or usage
                        for choice in chunk.get("choices") or []:
                            delta = choice.get("delta") or {}
                            _merge_tool_call_deltas(calls, delta.get("tool_calls"))
                            piece = delta.get("content") or ""
                            lps = tuple(_parse_logprobs(choice.get("logprobs")))
                            if choice.get("finish_reason") == "length":
                                finish = "length"
                            complete = complete or bool(choice.get("finish_reason"))
                            if piece or lps:
                                first = first or time.perf_counter()
                                text.append(piece)
                                logprobs.extend(lps)
                                if not wrapped:
                                    yield Delta(text=piece, logprobs=lps)
        if not complete:
            raise BackendError(f"{self.info.id}: the upstream stream ended before it finished (no finish reason, "
                               "no [DONE]): truncated")
        ended = time.perf_counter()
        answer, answer_logprobs = "".join(text), tuple(logprobs)
        if wrapped:
            answer, answer_logprobs = unwrap(answer, answer_logprobs)
            if answer or answer_logprobs:
                yield Delta(text=answer, logprobs=answer_logprobs)
        yield Generation(
            model=self.info.id,
            text=answer,
            tool_calls=tuple(ToolCall(c["id"], c["name"], c["arguments"]) for _, c in sorted(calls.items())),
            finish_reason=finish,  # type: ignore[arg-type]
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", len(logprobs))),
            logprobs=answer_logprobs,
            timings=Timings(ttft_s=(first or ended) - started, total_s=ended - started),
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _message(m: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                             for c in m.tool_calls]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    return out


def _parse_tool_calls(items: list[dict[str, Any]] | None) -> Iterator[ToolCall]:
    for item in items or []:
        fn = item["function"]
        yield ToolCall(id=item.get("id") or new_call_id(), name=fn["name"], arguments=fn.get("arguments") or "{}")


def _merge_tool_call_deltas(calls: dict[int, dict[str, str]], deltas: list[dict[str, Any]] | None) -> None:
    """Accumulate streamed tool-call fragments (name once, arguments in pieces) by index."""
    for d in deltas or []:
        slot = calls.setdefault(int(d.get("index", 0)), {"id": "", "name": "", "arguments": ""})
        slot["id"] = d.get("id") or slot["id"] or new_call_id()
        fn = d.get("function") or {}
        slot["name"] += fn.get("name") or ""
        slot["arguments"] += fn.get("arguments") or ""


def _sse_data(line: str) -> Iterator[dict[str, Any]]:
    """The JSON payload of one SSE line, if it carries one (`[DONE]` and comments carry none)."""
    if not line.startswith("data:"):
        return
    payload = line[5:].strip()
    if payload and payload != "[DONE]":
        yield loads(payload)


def _parse_logprobs(block: dict[str, Any] | None) -> Iterator[TokenLogprob]:
    for item in (block or {}).get("content") or []:
        yield TokenLogprob(
            token=item["token"],
            logprob=float(item["logprob"]),
            top=tuple(TopLogprob(token=t["token"], logprob=float(t["logprob"])) for t in item.get("top_logprobs") or []),
        )
