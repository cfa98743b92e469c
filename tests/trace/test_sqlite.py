"""The SQLite trace store and the group-commit writer."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from smallfleet.trace.migrations import MIGRATIONS
from smallfleet.trace.record import Trace, new_trace_id
from smallfleet.trace.sqlite import SQLiteTraceStore, TraceQuery
from smallfleet.trace.writer import TraceWriter


def make(model: str = "m", status: str = "ok", created_at: float | None = None) -> Trace:
    return Trace(id=new_trace_id(), created_at=created_at or time.time(), endpoint="/v1/chat/completions",
                 model=model, status=status, messages=[{"role": "user", "content": "héllo"}],
                 params={"temperature": 0}, output="hi", prompt_tokens=3, completion_tokens=1, logprob_mean=-0.2)


def test_migrations_are_recorded_once(tmp_path: Path) -> None:
    store = SQLiteTraceStore(tmp_path / "t.db")
    assert store.applied_migrations() == [name for name, _ in MIGRATIONS]
    store.close()
    again = SQLiteTraceStore(tmp_path / "t.db")  # reopening applies nothing twice
    assert again.applied_migrations() == [name for name, _ in MIGRATIONS]


def test_database_is_in_wal_mode(tmp_path: Path) -> None:
    SQLiteTraceStore(tmp_path / "t.db").close()
    assert sqlite3.connect(tmp_path / "t.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_append_then_get_round_trips_every_field(store: SQLiteTraceStore) -> None:
    trace = make()
    store.append(trace)
    assert store.get(trace.id) == trace
    assert store.get(trace.id[:14]) == trace  # a unique prefix works too
    assert store.get("nope") is None


def test_query_filters_and_orders_newest_first(store: SQLiteTraceStore) -> None:
    old, mid, new = make("a", created_at=1.0), make("b", "error", created_at=2.0), make("a", created_at=3.0)
    store.append_many([old, mid, new])
    assert [t.id for t in store.query()] == [new.id, mid.id, old.id]
    assert [t.id for t in store.query(TraceQuery(model="a"))] == [new.id, old.id]
    assert [t.id for t in store.query(TraceQuery(status="error"))] == [mid.id]
    assert [t.id for t in store.query(TraceQuery(limit=1, before=3.0))] == [mid.id]


def test_ids_sort_by_creation() -> None:
    first = new_trace_id()
    time.sleep(0.002)
    assert new_trace_id() > first


def test_writer_commits_before_the_waiter_resumes_and_batches_under_load(store: SQLiteTraceStore) -> None:
    writer = TraceWriter(store)
    traces = [make() for _ in range(300)]

    async def run() -> None:
        await asyncio.gather(*(writer.append(t) for t in traces))

    asyncio.run(run())
    assert store.count() == 300  # every awaited append is on disk
    writer.close()


def test_writer_close_flushes_what_is_queued(store: SQLiteTraceStore) -> None:
    writer = TraceWriter(store)
    futures = [writer.submit(make()) for _ in range(50)]
    writer.close()
    assert all(f.done() and f.exception() is None for f in futures)
    assert store.count() == 50


def test_writer_reports_a_failed_commit_to_each_waiter() -> None:
    class Broken:
        def append_many(self, traces):
            raise sqlite3.OperationalError("disk I/O error")

    writer = TraceWriter(Broken())
    future = writer.submit(make())
    with pytest.raises(sqlite3.OperationalError):
        future.result(timeout=5)
    writer.close()


def test_concurrent_readers_and_the_writer_do_not_block_each_other(store: SQLiteTraceStore) -> None:
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(50):
                store.query(TraceQuery(limit=5))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for r in readers:
        r.start()
    for _ in range(50):
        store.append(make())
    for r in readers:
        r.join()
    assert not errors and store.count() == 50


def test_a_lone_surrogate_never_fails_a_batch(tmp_path) -> None:  # noqa: ANN001
    from smallfleet.trace.record import Trace
    from smallfleet.trace.sqlite import SQLiteTraceStore

    store = SQLiteTraceStore(tmp_path / "traces.db")
    bad = Trace(id="bad", created_at=1.0, endpoint="e", model="m", messages=[{"role": "user", "content": "a\ud800b"}],
                output="x\udfff")
    store.append_many([Trace(id="good", created_at=1.0, endpoint="e", model="m"), bad])
    assert store.get("good") is not None
    kept = store.get("bad")
    assert kept.messages[0]["content"] == "a\ufffdb" and kept.output == "x\ufffd"


def test_a_closed_writer_refuses_at_once_instead_of_leaving_the_caller_waiting(store: SQLiteTraceStore) -> None:
    writer = TraceWriter(store)
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(make()).result(timeout=1)


def test_a_waiter_that_gave_up_never_stops_the_group_commit_threads(store: SQLiteTraceStore, tmp_path) -> None:  # noqa: ANN001
    from smallfleet.guard.audit import AuditLog

    writer, audit = TraceWriter(store), AuditLog(tmp_path / "audit.db")
    row = {"tenant": None, "contract": None, "model": "m", "policy": "allow", "categories": {}, "payload_sha256": "x"}
    for _ in range(20):  # cancelled as a timed-out or disconnected request's wait is
        writer.submit(make()).cancel()
        audit.submit(**row).cancel()
    assert writer.submit(make()).result(timeout=5) is None  # both threads still commit
    assert audit.submit(**row).result(timeout=5).seq >= 1
    writer.close()
    audit.close()


def test_waiters_on_the_event_loop_are_woken_per_batch_and_may_give_up(store: SQLiteTraceStore, tmp_path) -> None:  # noqa: ANN001
    """`append` and `AuditLog.record` wait on the loop's own futures: cancelled waiters are skipped, a failed commit
    reaches each waiter, a closed writer refuses at once, and the threads go on committing."""
    from smallfleet.guard.audit import AuditLog

    writer, audit = TraceWriter(store), AuditLog(tmp_path / "audit.db")
    row = {"tenant": None, "contract": None, "model": "m", "policy": "allow", "categories": {}, "payload_sha256": "x"}

    async def run() -> list[int]:
        gave_up = [asyncio.ensure_future(writer.append(make())) for _ in range(20)]
        gave_up += [asyncio.ensure_future(audit.record(**row)) for _ in range(20)]
        await asyncio.sleep(0)
        for task in gave_up:
            task.cancel()
        await asyncio.gather(*(writer.append(make()) for _ in range(50)))
        rows = await asyncio.gather(*(audit.record(**row) for _ in range(5)))
        return [r.seq for r in rows]

    seqs = asyncio.run(run())
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert store.count() == 70  # the waiters gave up after their traces were queued: all committed, none twice
    writer.close()

    async def closed() -> None:
        await writer.append(make())

    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(closed())

    class Broken:
        def append_many(self, traces):  # noqa: ANN001, ANN202
            raise sqlite3.OperationalError("disk I/O error")

    broken = TraceWriter(Broken())

    async def fails() -> None:
        await broken.append(make())

    with pytest.raises(sqlite3.OperationalError):
        asyncio.run(fails())
    broken.close()
    audit.close()


def test_settle_wakes_each_event_loop_once_per_batch() -> None:
    """A batch's waiters on one loop are settled by one callback, not one wake-up each; thread futures at once."""
    from concurrent.futures import Future

    from smallfleet.trace.writer import settle

    async def run() -> tuple[int, list[object]]:
        loop = asyncio.get_running_loop()
        calls = 0
        original = loop.call_soon_threadsafe

        def counted(callback, *args):  # noqa: ANN001, ANN002, ANN202
            nonlocal calls
            calls += getattr(callback, "__name__", "") == "_settle_on_loop"  # (to_thread wakes the loop too)
            return original(callback, *args)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        futures = [loop.create_future() for _ in range(10)]
        futures[3].cancel()  # a waiter that gave up is skipped
        thread_future: Future[int] = Future()
        error = ValueError("no")
        await asyncio.to_thread(settle, [(f, i, None) for i, f in enumerate(futures[:9])]
                                + [(futures[9], None, error), (thread_future, 42, None)])
        results = await asyncio.gather(*futures, return_exceptions=True)
        return calls, [*results, thread_future.result()]

    calls, results = asyncio.run(run())
    assert calls == 1
    assert results[:3] == [0, 1, 2] and isinstance(results[3], asyncio.CancelledError) and results[4:9] == [4, 5, 6, 7, 8]
    assert isinstance(results[9], ValueError) and results[10] == 42
