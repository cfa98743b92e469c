"""Group-commit trace writer: requests hand traces to one writer thread and await the commit.

Under load many requests finish at once; one transaction per batch keeps the cost of a durable
trace far below a millisecond per request, and the SQLite file never sees two writers. The
gateway awaits `append` before answering, so a request that got an answer has a trace on disk.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from typing import Any, Protocol

from smallfleet.trace.record import Trace


class TraceSink(Protocol):
    """What the writer needs of a store."""

    def append_many(self, traces: list[Trace]) -> None: ...


_STOP = object()
log = logging.getLogger("smallfleet.trace")


Done = Future[Any] | asyncio.Future[Any]
"""How a group-commit thread tells a waiter its item is committed: a thread's `concurrent.futures.Future`, or an
event loop's own future (`settle` wakes each loop once per batch, not once per waiter)."""


def _resolve(fut: Future[Any], result: Any = None, error: BaseException | None = None) -> None:  # noqa: ANN401
    """Settle a waiter's future from a group-commit thread; one whose waiter gave up (cancelled: a timeout, a
    client that left) is skipped, so the thread never dies of it."""
    try:
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)
    except InvalidStateError:
        pass


def settle(outcomes: Sequence[tuple[Done, Any, BaseException | None]]) -> None:
    """Settle a batch's waiters from its group-commit thread: (future, result, error) each. Thread futures at once;
    event-loop futures with one `call_soon_threadsafe` per loop (a loop already closed has nobody waiting)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, BaseException | None]]] = {}
    for fut, result, error in outcomes:
        if isinstance(fut, asyncio.Future):
            by_loop.setdefault(fut.get_loop(), []).append((fut, result, error))
        else:
            _resolve(fut, result, error)
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_on_loop, items)
        except RuntimeError:  # the loop is closed
            pass


def _settle_on_loop(items: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for fut, result, error in items:
        if fut.done():  # its waiter gave up (cancelled)
            continue
        try:
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)
        except Exception as exc:  # noqa: BLE001 - never leave the rest of the batch waiting
            log.exception("could not settle a waiter")
            if not fut.done():
                fut.set_exception(RuntimeError(f"the commit's outcome could not be delivered: {exc!r}"))


def next_batch(q: queue.SimpleQueue[Any], limit: int, stop: object) -> list[Any] | None:
    """For a group-commit thread: wait for an item, then take what else is queued, up to `limit`; None once `stop`
    comes first (a `stop` met after some items ends this batch and is put back for the next call)."""
    item = q.get()
    if item is stop:
        return None
    batch = [item]
    while len(batch) < limit:
        try:
            nxt = q.get_nowait()
        except queue.Empty:
            break
        if nxt is stop:
            q.put(stop)
            break
        batch.append(nxt)
    return batch


class TraceWriter:
    """Batches appends from many requests into few transactions on a dedicated thread."""

    def __init__(self, store: TraceSink, max_batch: int = 512,
                 observers: Sequence[Callable[[Trace], None]] = ()) -> None:
        self._store = store
        self._max_batch = max_batch
        self._observers = tuple(observers)  # told of each trace once it is committed (metrics), after its waiter
        self._submitted = 0
        self._observed = 0
        self._closed = False
        self._seen = threading.Condition()
        self._queue: queue.SimpleQueue[tuple[Trace, Done] | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="trace-writer", daemon=True)
        self._thread.start()

    def submit(self, trace: Trace) -> Future[None]:
        """Queue a trace; the future resolves once it is committed (or carries the error: at once, once the
        writer is closed, so nothing waits for a commit that will never come)."""
        done: Future[None] = Future()
        self._put(trace, done)
        return done

    def _put(self, trace: Trace, done: Done) -> None:
        with self._seen:  # (close() takes it too: nothing is queued after the thread's last batch)
            if self._closed:
                done.set_exception(RuntimeError("the trace writer is closed"))
                return
            self._submitted += 1
            self._queue.put((trace, done))

    def wait_observed(self, timeout_s: float = 1.0) -> bool:
        """Wait until every trace submitted so far has been seen by the observers (a scrape of /metrics reads
        what was answered before it); False if that took longer than `timeout_s`."""
        with self._seen:
            target = self._submitted
            return self._seen.wait_for(lambda: self._observed >= target, timeout_s)

    async def append(self, trace: Trace) -> None:
        """Queue a trace and wait for its commit without blocking the event loop."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._put(trace, done)
        await done

    def _run(self) -> None:
        while (batch := next_batch(self._queue, self._max_batch, _STOP)) is not None:
            self._commit(batch)  # type: ignore[arg-type]

    def _commit(self, batch: list[tuple[Trace, Done]]) -> None:
        try:
            self._store.append_many([t for t, _ in batch])
        except Exception as exc:  # each waiter learns its trace was not stored
            settle([(fut, None, exc) for _, fut in batch])
            self._count_observed(len(batch))
            return
        settle([(fut, None, None) for _, fut in batch])  # the answers go first: observing never delays one
        for trace, _ in batch:
            for observe in self._observers:
                try:
                    observe(trace)
                except Exception:  # noqa: BLE001 - an observer never loses a trace or fails a request
                    log.exception("trace observer failed")
        self._count_observed(len(batch))

    def _count_observed(self, n: int) -> None:
        with self._seen:
            self._observed += n
            self._seen.notify_all()

    def close(self) -> None:
        """Commit everything queued, then stop the thread."""
        with self._seen:
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()
