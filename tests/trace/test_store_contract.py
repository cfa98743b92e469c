"""The trace store contract, run against both stores (SQLite and PostgreSQL): what the gateway, the CLI, the
distillation loop and the dashboard rely on, including what several replicas sharing one store do at once."""

from __future__ import annotations

import threading
import time

import pytest

from smallfleet.observe.dashboard import Dashboard, Window
from smallfleet.trace.record import Trace, new_trace_id
from smallfleet.trace.store import NANO, TraceQuery, TraceStore
from tests.conftest import replica_of


def make(model: str = "m", status: str = "ok", created_at: float | None = None, **extra: object) -> Trace:
    return Trace(id=new_trace_id(), created_at=created_at or time.time(), endpoint="/v1/chat/completions",
                 model=model, status=status, messages=[{"role": "user", "content": "héllo"}],
                 params={"temperature": 0}, output="hi", prompt_tokens=3, completion_tokens=1, logprob_mean=-0.2,
                 **extra)  # type: ignore[arg-type]


def test_migrations_are_recorded_once_and_reopening_applies_nothing(any_store: TraceStore) -> None:
    applied = any_store.applied_migrations()
    assert applied and applied == sorted(applied)
    again = replica_of(any_store)
    assert again.applied_migrations() == applied
    again.close()


def test_append_then_get_round_trips_every_field(any_store: TraceStore) -> None:
    trace = make(contract="triage", input="x", rung=1, escalation_reason="low; y", confidence=0.5, cost=0.25,
                 attempts=[{"rung": 0, "status": "rejected", "location": "local"}], tenant="shop", run_id="run-1",
                 step="s1", latency_ms=12.5, stream=True)
    any_store.append(trace)
    assert any_store.get(trace.id) == trace
    assert any_store.get(trace.id[:14]) == trace  # a unique prefix works too
    assert any_store.get("nope") is None and any_store.get("%") is None
    assert any_store.count() == 1


def test_a_shared_prefix_is_ambiguous(any_store: TraceStore) -> None:
    a, b = make(), make()
    a.id, b.id = "abc1", "abc2"
    any_store.append_many([a, b])
    assert any_store.get("abc") is None and any_store.get("abc1") == a


def test_query_filters_and_orders_newest_first(any_store: TraceStore) -> None:
    old, mid, new = make("a", created_at=1.0), make("b", "error", created_at=2.0), make("a", created_at=3.0)
    new.tenant, new.endpoint = "shop", "/v1/responses"
    any_store.append_many([old, mid, new])
    assert [t.id for t in any_store.query()] == [new.id, mid.id, old.id]
    assert [t.id for t in any_store.query(TraceQuery(model="a"))] == [new.id, old.id]
    assert [t.id for t in any_store.query(TraceQuery(status="error"))] == [mid.id]
    assert [t.id for t in any_store.query(TraceQuery(limit=1, before=3.0))] == [mid.id]
    assert [t.id for t in any_store.query(TraceQuery(tenant="shop", endpoint="/v1/responses"))] == [new.id]


def test_a_batch_is_all_or_nothing(any_store: TraceStore) -> None:
    first = make()
    any_store.append(first)
    with pytest.raises(Exception):  # noqa: B017, PT011 - each driver names the duplicate key its own way
        any_store.append_many([make(), first])
    assert any_store.count() == 1


def test_labels_replace_unless_told_not_to(any_store: TraceStore) -> None:
    trace = make(contract="triage")
    any_store.append(trace)
    any_store.add_label(trace.id, "billing", "person")
    any_store.add_label(trace.id, "shipping", "shadow:big", replace=False)  # a live check never overwrites
    assert any_store.label_sources("triage") == {trace.id: ("billing", "person")}
    any_store.add_label(trace.id, "refund", "person")
    assert any_store.labels("triage") == {trace.id: "refund"} and any_store.labels("other") == {}


def test_a_workflow_run_reads_back_in_order_by_id_or_prefix(any_store: TraceStore) -> None:
    hops = [make(created_at=10.0 + i, run_id="run-abc", step=f"s{i}") for i in range(3)]
    any_store.append_many([hops[2], hops[0], hops[1], make(run_id="run-xyz")])
    assert [t.step for t in any_store.run("run-abc")] == ["s0", "s1", "s2"]
    assert [t.step for t in any_store.run("run-a")] == ["s0", "s1", "s2"]
    assert any_store.run("run-") == [] and any_store.run("nope") == []


def test_stored_responses_are_kept_and_replaced(any_store: TraceStore) -> None:
    any_store.put_response("resp_1", 5.0, "shop", "[1]", "{}")
    any_store.put_response("resp_1", 6.0, "shop", "[1, 2]", '{"a": 1}')
    assert any_store.get_response("resp_1") == ("shop", "[1, 2]", '{"a": 1}')
    assert any_store.get_response("resp_2") is None


def test_text_no_database_can_encode_is_stored_replaced_not_lost(any_store: TraceStore) -> None:
    odd = make(input="nul \x00 and lone \ud800 here")
    odd.output = "out \x00"
    any_store.append_many([odd, make()])
    got = any_store.get(odd.id)
    assert got is not None and got.input is not None and "here" in got.input and any_store.count() == 2


def test_the_ledger_reserves_within_limits_and_refuses_whole(any_store: TraceStore) -> None:
    day, total = ("tenant", "shop", "day:2026-11-26"), ("tenant", "shop", "total")
    other = ("contract", "triage", "total")
    assert any_store.spent([day, total]) == {day: 0, total: 0}
    assert any_store.reserve([(day, 10), (total, None), (other, 100)], 6) is None
    assert any_store.reserve([(day, 10), (total, None), (other, 100)], 6) == day  # would pass the day's 10
    assert any_store.spent([day, total, other]) == {day: 6, total: 6, other: 6}  # the refusal changed nothing
    any_store.settle([day, total, other], -2)  # the call cost less than its hold
    assert any_store.spent([day, total, other]) == {day: 4, total: 4, other: 4}
    assert any_store.reserve([(day, 10), (total, None)], 6) is None
    assert any_store.spent([day]) == {day: 10}


def test_replicas_reserving_at_once_never_pass_a_limit(any_store: TraceStore) -> None:
    """Three stores over one database (three replicas), 6 threads each, reserving as fast as they can."""
    key, limit, hold = ("contract", "triage", "total"), 50 * NANO // 1000, NANO // 1000  # $0.05 in $0.001 holds
    stores = [any_store, replica_of(any_store), replica_of(any_store)]
    granted = []
    lock = threading.Lock()

    def hammer(store: TraceStore) -> None:
        for _ in range(12):
            if store.reserve([(key, limit), (("tenant", "t", "total"), None)], hold) is None:
                with lock:
                    granted.append(1)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in stores for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 50 and any_store.spent([key])[key] == limit  # 216 tries: exactly the limit, no more
    for s in stores[1:]:
        s.close()


def test_concurrent_batches_from_replicas_keep_the_rollups_exact(any_store: TraceStore) -> None:
    stores = [any_store, replica_of(any_store), replica_of(any_store)]
    now = time.time()

    def write(store: TraceStore) -> None:
        for _ in range(10):
            store.append_many([make(contract="triage", created_at=now, latency_ms=5.0) for _ in range(5)])

    threads = [threading.Thread(target=write, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dashboard = Dashboard(any_store.reader())
    overview = dashboard.overview(Window(now - 3600, now + 1))
    dashboard.close()
    assert any_store.count() == 150 and overview["requests"] == 150
    for s in stores[1:]:
        s.close()


def test_purge_removes_old_traces_labels_and_responses_and_keeps_the_budgets(any_store: TraceStore) -> None:
    now = time.time()
    old = [make(contract="refunds", created_at=now - 40 * 86400) for _ in range(4)]
    new = [make(contract="refunds", created_at=now - 60) for _ in range(2)]
    any_store.append_many(old + new)
    any_store.add_label(old[0].id, "a", "person")
    any_store.add_label(new[0].id, "b", "person")
    any_store.put_response("resp_old", now - 40 * 86400, None, "[]", "{}")
    key = ("contract", "refunds", "total")
    any_store.reserve([(key, None)], 7)
    assert any_store.purge(now - 30 * 86400) == {"traces": 4, "labels": 1}
    assert any_store.count() == 2 and any_store.get(old[0].id) is None and set(any_store.labels("refunds")) == \
        {new[0].id}
    assert any_store.get_response("resp_old") is None and any_store.spent([key])[key] == 7
    dashboard = Dashboard(any_store.reader())
    assert dashboard.overview(Window(now - 50 * 86400, now + 1))["requests"] == 2  # rollups follow
    dashboard.close()
    assert any_store.purge(float("inf")) == {"traces": 2, "labels": 1} and any_store.count() == 0


def test_the_reader_takes_question_mark_placeholders_and_literal_percents(any_store: TraceStore) -> None:
    any_store.append(make(model="50%"))
    reader = any_store.reader()
    assert reader.rows("SELECT model FROM traces WHERE model LIKE '%\\%' ESCAPE '\\' AND status = ?", ("ok",)) \
        == [{"model": "50%"}]
    reader.close()
