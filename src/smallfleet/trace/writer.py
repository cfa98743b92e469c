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
from typing import Any, Generic, Protocol, TypeVar

from smallfleet.trace.record import Trace


class TraceSink(Protocol):
    """What the writer needs of a store."""

    def append_many(self, traces: list[Trace]) -> None: ...


_STOP = object()
log = logging.getLogger("smallfleet.trace")
T = TypeVar("T")
R = TypeVar("R")


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


class GroupCommit(Generic[T, R]):
    """One thread committing what many callers queue, a batch at a time (`commit`: the batch's items in, one
    result per item out, in one transaction). Each caller waits for its own item's result, or the batch's error;
    `after` is told of each batch once its waiters are settled. Once closed, what is queued is committed first
    and anything put after is refused at once (nothing waits for a commit that will never come)."""

    def __init__(self, commit: Callable[[list[T]], list[R]], name: str, max_batch: int = 512,
                 after: Callable[[list[T], BaseException | None], None] | None = None) -> None:
        self._commit, self._name, self._max_batch, self._after = commit, name, max_batch, after
        self._queue: queue.SimpleQueue[tuple[T, Done] | object] = queue.SimpleQueue()
        self._state = threading.Lock()  # not a database lock: queueing never waits for a commit
        self._thread: threading.Thread | None = None
        self._closed = False

    def put(self, item: T, done: Done) -> bool:
        """Queue `item` for `done` (a thread's or an event loop's future); False, with `done` failed, once closed."""
        with self._state:
            if self._closed:
                done.set_exception(RuntimeError(f"the {self._name} is closed"))
                return False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._queue.put((item, done))
        return True

    def submit(self, item: T) -> Future[R]:
        """Queue `item`; the future resolves once it is committed."""
        done: Future[R] = Future()
        self.put(item, done)
        return done

    async def wait(self, item: T) -> R:
        """Queue `item` and wait for its commit without blocking the event loop."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self.put(item, done)
        return await done

    def _run(self) -> None:
        while (batch := next_batch(self._queue, self._max_batch, _STOP)) is not None:
            items = [item for item, _ in batch]  # type: ignore[misc]
            error: BaseException | None = None
            try:
                results = self._commit(items)
            except Exception as exc:  # noqa: BLE001 - each waiter learns its item was not committed
                error, results = exc, [None] * len(items)  # type: ignore[list-item]
            # A waiter that gave up meanwhile is skipped (the egress audit may list a call that was then not sent,
            # never the reverse).
            settle([(done, result, error) for (_, done), result in zip(batch, results, strict=True)])  # type: ignore[misc]
            if self._after is not None:
                self._after(items, error)

    def close(self) -> None:
        """Commit everything queued, then stop the thread."""
        with self._state:
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._queue.put(_STOP)
        if thread is not None:
            thread.join()


class TraceWriter:
    """Batches appends from many requests into few transactions on a dedicated thread (`GroupCommit`)."""

    def __init__(self, store: TraceSink, max_batch: int = 512,
                 observers: Sequence[Callable[[Trace], None]] = ()) -> None:
        self._store = store
        self._observers = tuple(observers)  # told of each trace once it is committed (metrics), after its waiter
        self._submitted = 0
        self._observed = 0
        self._seen = threading.Condition()
        self._commits: GroupCommit[Trace, None] = GroupCommit(self._write, "trace writer", max_batch, self._observe)

    def submit(self, trace: Trace) -> Future[None]:
        """Queue a trace; the future resolves once it is committed (or carries the error: at once, once the
        writer is closed, so nothing waits for a commit that will never come)."""
        done: Future[None] = Future()
        self._put(trace, done)
        return done

    def _put(self, trace: Trace, done: Done) -> None:
        with self._seen:
            if self._commits.put(trace, done):
                self._submitted += 1

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

    def _write(self, traces: list[Trace]) -> list[None]:
        self._store.append_many(traces)
        return [None] * len(traces)

    def _observe(self, traces: list[Trace], error: BaseException | None) -> None:
        """After the waiters (observing never delays an answer): the observers see each committed trace."""
        if error is None:
            for trace in traces:
                for observe in self._observers:
                    try:
                        observe(trace)
                    except Exception:  # noqa: BLE001 - an observer never loses a trace or fails a request
                        log.exception("trace observer failed")
        with self._seen:
            self._observed += len(traces)
            self._seen.notify_all()

    def close(self) -> None:
        """Commit everything queued, then stop the thread."""
        self._commits.close()
