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
    check(SQLiteTraceStore(path))
