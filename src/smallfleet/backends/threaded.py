"""Run a blocking, token-producing function on a worker thread and consume it asynchronously.

The embedded engine is synchronous and CPU-bound; running it on the event loop would stall
health checks and every other request. `iterate_in_thread` runs it on the backend's own
executor and hands each emitted item to the loop. When the consumer stops early (client gone,
error), the worker sees `cancel` set and stops at its next token.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import TypeVar

T = TypeVar("T")

Producer = Callable[[Callable[[T], None], threading.Event], None]

_END = object()


async def iterate_in_thread(executor: Executor, produce: Producer[T]) -> AsyncIterator[T]:
    """Yield what `produce(emit, cancel)` emits on `executor`; re-raise its exception here."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()
    cancel = threading.Event()

    def put(item: object, error: BaseException | None = None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (item, error))
        except RuntimeError:  # loop already closed: nobody is listening any more
            cancel.set()

    def run() -> None:
        try:
            produce(lambda item: put(item), cancel)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(_END, exc)
            return
        put(_END)

    loop.run_in_executor(executor, run)
    try:
        while True:
            item, error = await queue.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        cancel.set()
