"""An OpenAI-compatible upstream that misbehaves on purpose, at the TCP level: for fault-injection tests of the
remote path (retries, fallback, breaker, stream error frames) and the load benchmark.

It is a raw asyncio server, not an ASGI app, so it can do what a broken server or network does: reset the
connection (RST, not a polite close), stop a response half way, stream SSE and never send `[DONE]`, send a
body that is not JSON, answer 5xx, or stall. Each request takes the next fault from `script` (then
`default`): `ok`, `slow:<seconds>`, `status:<code>`, `reset`, `truncated`, `invalid_json`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class FaultUpstream:
    """The server's behaviour; `served` counts requests by the fault each got."""

    default: str = "ok"
    script: deque[str] = field(default_factory=deque)
    text: str = "fine, thanks"
    served: dict[str, int] = field(default_factory=dict)

    def next_fault(self) -> str:
        fault = self.script.popleft() if self.script else self.default
        self.served[fault] = self.served.get(fault, 0) + 1
        return fault

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                body = json.loads(await reader.readexactly(length) or b"{}")
                if not await self._answer(body, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if not writer.is_closing():
                writer.transport.abort()

    async def _answer(self, body: dict, writer: asyncio.StreamWriter) -> bool:
        """Write one response; False when the connection must end after it."""
        fault = self.next_fault()
        stream = bool(body.get("stream"))
        if fault.startswith("slow:"):
            await asyncio.sleep(float(fault.split(":", 1)[1]))
            fault = "ok"
        if fault == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
            writer.transport.abort()
            return False
        if fault.startswith("status:"):
            code = int(fault.split(":", 1)[1])
            payload = json.dumps({"error": {"message": "injected", "type": "server_error"}}).encode()
            writer.write(_head(code, "application/json", len(payload)) + payload)
            await writer.drain()
            return True
        if fault == "invalid_json":
            payload = b'{"choices": [{"message": {"content": "unterminated'
            if stream:
                writer.write(_head(200, "text/event-stream", None) + b"data: {not json\n\n")
                await writer.drain()
                return False
            writer.write(_head(200, "application/json", len(payload)) + payload)
            await writer.drain()
            return True
        if stream:
            words = self.text.split(" ")
            out = _head(200, "text/event-stream", None)
            for i, word in enumerate(words):
                if fault == "truncated" and i == len(words) // 2:
                    writer.write(out)
                    await writer.drain()
                    writer.transport.abort()  # mid-stream, no [DONE]
                    return False
                out += _sse({"choices": [{"index": 0, "delta": {"content": word if i == 0 else " " + word},
                                          "finish_reason": None}]})
            out += _sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 5, "completion_tokens": len(words),
                                   "total_tokens": 5 + len(words)}})
            writer.write(out + b"data: [DONE]\n\n")
            await writer.drain()
            return False  # SSE ends with the connection (no chunked framing here)
        payload = json.dumps({
            "id": "chatcmpl-fault", "object": "chat.completion", "created": 0, "model": "fault",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self.text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}).encode()
        if fault == "truncated":
            writer.write(_head(200, "application/json", len(payload)) + payload[: len(payload) // 2])
            await writer.drain()
            writer.transport.abort()
            return False
        writer.write(_head(200, "application/json", len(payload)) + payload)
        await writer.drain()
        return True


def _head(status: int, content_type: str, length: int | None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Type: {content_type}"]
    lines += [f"Content-Length: {length}"] if length is not None else ["Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _sse(obj: dict) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


@contextmanager
def running(upstream: FaultUpstream) -> Iterator[str]:
    """Serve `upstream` on a loopback port in a thread; yield its base URL (`http://127.0.0.1:PORT/v1`)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def start() -> None:
        server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
        holder["server"], holder["port"] = server, server.sockets[0].getsockname()[1]
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{holder['port']}/v1"
    finally:
        async def stop() -> None:
            server = holder["server"]
            server.close()  # type: ignore[attr-defined]
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
