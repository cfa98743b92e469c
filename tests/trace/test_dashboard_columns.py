"""The dashboard's derived trace columns (migration m008): written with each trace, backfilled for old ones,
and defined exactly as `route.report` computes from the attempts."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from smallfleet.route.report import report
from smallfleet.trace.migrations import MIGRATIONS
from smallfleet.trace.record import DERIVED, Trace
from smallfleet.trace.sqlite import SQLiteTraceStore

ATTEMPTS = {
    "local": [{"rung": 0, "model": "small", "status": "accepted", "location": "local", "cost": 0.0}],
    "escalated": [{"rung": 0, "model": "small", "status": "rejected", "reason": "low_mean_logprob",
                   "location": "local", "cost": 0.0},
                  {"rung": 1, "model": "big", "status": "accepted", "location": "remote", "cost": 0.002}],
    "shadowed": [{"rung": 0, "model": "small", "status": "accepted", "location": "local", "cost": 0.0},
                 {"rung": 1, "model": "big", "status": "shadow", "location": "remote", "cost": 0.003}],
}


def traces() -> list[Trace]:
    now = time.time()
    out = []
    for i, (kind, attempts) in enumerate(ATTEMPTS.items()):
        rung = 1 if kind == "escalated" else 0
        out.append(Trace(id=f"t{i}", created_at=now + i, endpoint="/v1/chat/completions", model="triage",
                         contract="triage", rung=rung, attempts=attempts, cost=sum(a["cost"] for a in attempts),
                         escalation_reason="low_mean_logprob; x" if kind == "escalated" else None, latency_ms=5.0))
    out.append(Trace(id="t9", created_at=now + 9, endpoint="/v1/chat/completions", model="triage", contract="triage",
                     status="error", http_status=502, escalation_reason="backend_error: backend_timeout"))
    return out


def check(store: SQLiteTraceStore) -> None:
    rows = {r["id"]: r for r in store._conn.execute("SELECT id, " + ", ".join(DERIVED) + " FROM traces")}
    assert rows["t0"]["answered_local"] == 1 and rows["t1"]["answered_local"] == 0 and rows["t2"]["answered_local"] == 1
    assert rows["t1"]["top_cost"] == 0.002 and rows["t2"]["top_cost"] == 0.003 and rows["t0"]["top_answers"] == 0
    assert rows["t1"]["reason"] == "low_mean_logprob" and rows["t9"]["reason"] == "backend_error: backend_timeout"
    assert rows["t9"]["answered_local"] == 0
    expected = report(traces(), {})
    n, local, top_cost, top_n = store._conn.execute(
        "SELECT COUNT(*), SUM(answered_local), SUM(top_cost), SUM(top_answers) FROM traces").fetchone()
    assert round(local / n, 4) == expected["local_share"]
    assert round(top_cost / top_n * n, 6) == expected["cost_all_top_rung_usd"]


def test_new_traces_carry_the_derived_columns(tmp_path: Path) -> None:
    store = SQLiteTraceStore(tmp_path / "traces.db")
    store.append_many(traces())
    check(store)
    assert store.get("t1").attempts == ATTEMPTS["escalated"]  # the record itself is unchanged


def test_traces_stored_before_the_migration_are_backfilled(tmp_path: Path) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    old_store(tmp_path)
    check(SQLiteTraceStore(tmp_path / "traces.db"))


def rollup_total(store: SQLiteTraceStore) -> dict[str, float]:
    from smallfleet.trace.rollup import Rollup

    total = Rollup()
    for row in store._conn.execute("SELECT * FROM trace_rollup"):
        total.merge(Rollup.from_row(row))
    return {"requests": total.requests, "local": total.local, "cost": round(total.cost, 6),
            "top_answers": total.top_answers, "reasons": sum(total.reasons.values())}


def test_the_rollups_hold_what_the_traces_hold_new_or_backfilled(tmp_path: Path) -> None:
    store = SQLiteTraceStore(tmp_path / "a.db")
    store.append_many(traces()[:2])
    store.append_many(traces()[2:])  # a second batch folds into the same hour's row
    expected = {"requests": 4, "local": 2, "cost": 0.005, "top_answers": 2, "reasons": 2}
    assert rollup_total(store) == expected
    test_traces_stored_before_the_migration_are_backfilled(tmp_path / "b")
    assert rollup_total(SQLiteTraceStore(tmp_path / "b" / "traces.db")) == expected


def test_a_purge_drops_the_purged_hours_from_the_rollups(tmp_path: Path) -> None:
    store = SQLiteTraceStore(tmp_path / "traces.db")
    hour = 3600 * (int(time.time()) // 3600)
    old = [Trace(id=f"o{i}", created_at=hour - 7200 + i, endpoint="e", model="m", latency_ms=1.0) for i in range(3)]
    edge = [Trace(id=f"e{i}", created_at=hour + i * 20, endpoint="e", model="m", latency_ms=1.0) for i in range(3)]
    store.append_many(old + edge)
    store.purge(before=hour + 30)  # through the middle of the last hour: e0 and e1 go, e2 stays
    assert rollup_total(store)["requests"] == 1 == store.count()


def test_percentiles_from_the_histogram_are_within_a_bucket() -> None:
    import random

    from smallfleet.stats import percentile
    from smallfleet.trace.rollup import Rollup

    rng = random.Random(1)
    values = [rng.lognormvariate(5, 1) for _ in range(5000)]
    r = Rollup()
    for i, v in enumerate(values):
        r.add(Trace(id=str(i), created_at=0.0, endpoint="e", model="m", latency_ms=v))
    for q in (50, 95, 99):
        exact = percentile(values, q)
        assert exact <= r.percentile(q) <= exact * 1.25 + 0.1


def test_two_processes_upgrading_one_store_at_once_both_open_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    old_store(tmp_path)
    code = "import sys; from pathlib import Path; from smallfleet.trace.sqlite import SQLiteTraceStore; " \
           "SQLiteTraceStore(Path(sys.argv[1])).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "traces.db")], stderr=subprocess.PIPE)
             for _ in range(3)]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    store = SQLiteTraceStore(tmp_path / "traces.db")
    assert "m009_rollup" in store.applied_migrations()
    assert rollup_total(store)["requests"] == 4  # filled once, not once per process
    check(store)


def old_store(tmp_path: Path) -> None:
    """A store as it was before the dashboard's migrations, holding `traces()`."""
    path = tmp_path / "traces.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    for name, sql in MIGRATIONS:
        if name == "m008_dashboard":
            break
        for statement in (s for s in sql.split(";") if s.strip()):
            conn.execute(statement)
        conn.execute("INSERT INTO _migrations VALUES (?, ?)", (name, 0.0))
    for trace in traces():
        row = {k: v for k, v in trace.to_row().items() if k not in DERIVED}
        conn.execute(f"INSERT INTO traces ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))
    conn.close()


def test_purging_everything_empties_the_rollups(tmp_path: Path) -> None:
    store = SQLiteTraceStore(tmp_path / "traces.db")
    store.append_many(traces())
    store.purge(before=float("inf"))
    assert store.count() == 0 and rollup_total(store)["requests"] == 0
