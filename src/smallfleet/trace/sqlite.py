"""SQLite trace store (the default): WAL mode, append-only migrations recorded in `_migrations`.

`synchronous=NORMAL` under WAL means a committed trace survives the process being killed (the
OS holds it); only a power loss can drop the last commits. Readers never block the writer.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from smallfleet.trace.migrations import MIGRATIONS
from smallfleet.trace.record import Trace
from smallfleet.trace.rollup import COLUMNS as ROLLUP_COLUMNS
from smallfleet.trace.rollup import PERIOD_S, Rollup, rollups
from smallfleet.trace.store import BudgetKey, TraceQuery, like_prefix, sorted_limits

__all__ = ["SQLiteTraceStore", "TraceQuery"]

_ROLLUP_UPSERT = (f"INSERT OR REPLACE INTO trace_rollup ({', '.join(ROLLUP_COLUMNS)}) "
                  f"VALUES ({', '.join('?' for _ in ROLLUP_COLUMNS)})")


class SQLiteTraceStore:
    """Thread-safe store over one SQLite file."""

    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._migrate()
        columns = Trace.columns()
        self._insert = (
            f"INSERT INTO traces ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
        )

    def _migrate(self) -> None:
        """Apply the migrations not applied yet, each in its own write transaction that first re-reads what is
        applied (several processes may open one store at once, as the workers of one gateway do after an
        upgrade: the first applies a migration, the others find it done). The rollups of the traces stored
        before m009 are computed inside m009's own transaction."""
        with self._lock:
            self._conn.execute("PRAGMA busy_timeout = 600000")  # another process's migration may take minutes
            self._conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
            try:  # (the pragma is reset in the finally)
                for name, sql in MIGRATIONS:
                    self._conn.execute("BEGIN IMMEDIATE")
                    try:
                        if self._conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                            self._conn.execute("COMMIT")
                            continue
                        for statement in (s for s in sql.split(";") if s.strip()):
                            self._conn.execute(statement)
                        if name == "m009_rollup":
                            self._fill_rollups()
                        self._conn.execute("INSERT INTO _migrations VALUES (?, ?)", (name, time.time()))
                        self._conn.execute("COMMIT")
                    except BaseException:
                        self._conn.execute("ROLLBACK")
                        raise
            finally:
                self._conn.execute("PRAGMA busy_timeout = 30000")

    def _rebuild_rollups(self, hour: int | None = None) -> None:
        """Recompute the hourly rollups from the stored traces: all of them, or one `hour`'s, in one transaction.
        The caller holds the lock."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._fill_rollups(hour)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def _fill_rollups(self, hour: int | None = None) -> None:
        """`_rebuild_rollups` inside the caller's transaction: read the traces in chunks, write the sums."""
        low, high = (-1, 2**40) if hour is None else (hour, hour)
        self._conn.execute("DELETE FROM trace_rollup WHERE hour BETWEEN ? AND ?", (low, high))
        cursor = self._conn.execute("SELECT * FROM traces WHERE created_at >= ? AND created_at < ? "
                                    "ORDER BY created_at", (low * PERIOD_S, (high + 1) * PERIOD_S))
        total: dict[tuple[int, str], Rollup] = {}
        while rows := cursor.fetchmany(20_000):
            for key, part in rollups(Trace.from_row(dict(r)) for r in rows).items():
                total.setdefault(key, Rollup()).merge(part)
        self._conn.executemany(_ROLLUP_UPSERT, [r.to_row(*key) for key, r in total.items()])

    def _add_rollups(self, traces: list[Trace]) -> None:
        """Fold a batch into the rollups, in the batch's transaction (the caller holds the lock)."""
        for (hour, contract), part in rollups(traces).items():
            row = self._conn.execute(f"SELECT {', '.join(ROLLUP_COLUMNS)} FROM trace_rollup WHERE hour = ? "
                                     "AND contract = ?", (hour, contract)).fetchone()
            if row is not None:
                part.merge(Rollup.from_row(row))
            self._conn.execute(_ROLLUP_UPSERT, part.to_row(hour, contract))

    def applied_migrations(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._conn.execute("SELECT name FROM _migrations ORDER BY name")]

    def append(self, trace: Trace) -> None:
        self.append_many([trace])

    def append_many(self, traces: Iterable[Trace]) -> None:
        """Write traces in one transaction (all or none). Their cost is already in the budget ledger: it was
        reserved and settled when each priced call was made (`guard.budget`)."""
        traces = list(traces)
        rows = [t.to_row() for t in traces]
        if not rows:
            return
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(self._insert, rows)
                self._add_rollups(traces)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def get(self, trace_id: str) -> Trace | None:
        """One trace by id, or by a unique id prefix."""
        if not trace_id:
            return None
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM traces WHERE id = ? OR id LIKE ? ESCAPE '\\' ORDER BY id = ? DESC LIMIT 2",
                (trace_id, like_prefix(trace_id), trace_id),
            ).fetchall()
        if not rows or (len(rows) > 1 and rows[0]["id"] != trace_id):
            return None
        return Trace.from_row(dict(rows[0]))

    def query(self, q: TraceQuery = TraceQuery()) -> list[Trace]:
        clauses, args = [], []
        if q.model is not None:
            clauses.append("model = ?")
            args.append(q.model)
        if q.contract is not None:
            clauses.append("contract = ?")
            args.append(q.contract)
        if q.status is not None:
            clauses.append("status = ?")
            args.append(q.status)
        if q.endpoint is not None:
            clauses.append("endpoint = ?")
            args.append(q.endpoint)
        if q.tenant is not None:
            clauses.append("tenant = ?")
            args.append(q.tenant)
        if q.before is not None:
            clauses.append("created_at < ?")
            args.append(q.before)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT * FROM traces {where} ORDER BY created_at DESC, id DESC LIMIT ?", (*args, q.limit)
            ).fetchall()
        return [Trace.from_row(dict(r)) for r in rows]

    def add_label(self, trace_id: str, reference: str, source: str = "feedback", replace: bool = True) -> None:
        """Attach a reference answer (a gold label, a reviewer's answer) to a trace; the last one wins, unless
        `replace` is False (a live shadow answer never overwrites a label a person gave)."""
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        with self._lock:
            self._conn.execute(f"{verb} INTO labels VALUES (?, ?, ?, ?)", (trace_id, reference, source, time.time()))

    def label_sources(self, contract: str) -> dict[str, tuple[str, str]]:
        """(reference, source) by trace id for one contract."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT l.trace_id, l.reference, l.source FROM labels l JOIN traces t ON t.id = l.trace_id "
                "WHERE t.contract = ?", (contract,)).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def labels(self, contract: str) -> dict[str, str]:
        """Reference answers by trace id for one contract."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT l.trace_id, l.reference FROM labels l JOIN traces t ON t.id = l.trace_id WHERE t.contract = ?",
                (contract,)).fetchall()
        return {r[0]: r[1] for r in rows}

    def run(self, run_id: str) -> list[Trace]:
        """The hops of a workflow run (by its id or a unique prefix), in order."""
        if not run_id:
            return []
        with self._lock:
            ids = [r[0] for r in self._conn.execute(
                "SELECT DISTINCT run_id FROM traces WHERE run_id = ? OR run_id LIKE ? ESCAPE '\\' "
                "ORDER BY run_id = ? DESC LIMIT 2", (run_id, like_prefix(run_id), run_id)).fetchall()]
            if not ids or (len(ids) > 1 and ids[0] != run_id):
                return []
            rows = self._conn.execute("SELECT * FROM traces WHERE run_id = ? ORDER BY created_at, id",
                                      (ids[0],)).fetchall()
        return [Trace.from_row(dict(r)) for r in rows]

    def put_response(self, response_id: str, created_at: float, tenant: str | None, items: str, body: str) -> None:
        """Keep a Responses API response (`store: true`): the conversation's items so far and the response body."""
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
                               (response_id, created_at, tenant, items, body))

    def get_response(self, response_id: str) -> tuple[str | None, str, str] | None:
        """(tenant, items, body) of a stored response, or None."""
        with self._lock:
            row = self._conn.execute("SELECT tenant, items, body FROM responses WHERE id = ?", (response_id,)).fetchone()
        return (row[0], row[1], row[2]) if row is not None else None

    def reserve(self, limits: Sequence[tuple[BudgetKey, int | None]], hold_nano: int) -> BudgetKey | None:
        """Add `hold_nano` to every key's spend in one transaction, unless that would take one past its limit
        (None: no limit, the spend is only recorded): then nothing changes and that key is returned. `BEGIN
        IMMEDIATE` takes the file's write lock first, so the processes sharing the file reserve one at a time."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for key, limit in sorted_limits(limits):
                    self._conn.execute("INSERT INTO budget_spend (scope, name, win, spent_nano) VALUES (?, ?, ?, 0) "
                                       "ON CONFLICT DO NOTHING", key)
                    if not self._conn.execute(
                            "UPDATE budget_spend SET spent_nano = spent_nano + ? WHERE scope = ? AND name = ? AND "
                            "win = ? AND (? IS NULL OR spent_nano + ? <= ?) RETURNING spent_nano",
                            (hold_nano, *key, limit, hold_nano, limit)).fetchall():
                        self._conn.execute("ROLLBACK")
                        return key
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        return None

    def settle(self, keys: Sequence[BudgetKey], delta_nano: int) -> None:
        """Add `delta_nano` (negative: a refund of the unused part of a hold) to every key's spend."""
        if not delta_nano or not keys:
            return
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT INTO budget_spend (scope, name, win, spent_nano) VALUES (?, ?, ?, ?) ON CONFLICT "
                    "(scope, name, win) DO UPDATE SET spent_nano = budget_spend.spent_nano + excluded.spent_nano",
                    [(*key, delta_nano) for key in sorted(set(keys))])
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def spent(self, keys: Sequence[BudgetKey]) -> dict[BudgetKey, int]:
        """The spend recorded for each key (0 for a key never charged), in nano-dollars."""
        with self._lock:
            return {key: int(row[0]) if (row := self._conn.execute(
                "SELECT spent_nano FROM budget_spend WHERE scope = ? AND name = ? AND win = ?", key).fetchone())
                else 0 for key in keys}

    def reader(self) -> _Reader:
        """A read-only connection of its own (the dashboard's): it never waits for the writer's lock."""
        return _Reader(self.path)

    def purge(self, before: float) -> dict[str, int]:
        """Delete traces created before `before` (epoch seconds) and their labels, in one transaction.
        Budgets are kept in their own ledger, so a purge never gives one back. Deleted rows
        are overwritten on disk (`secure_delete`) and the WAL is truncated, so the values do not linger."""
        with self._lock:
            self._conn.execute("PRAGMA secure_delete=ON")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                labels = self._conn.execute(
                    "DELETE FROM labels WHERE trace_id IN (SELECT id FROM traces WHERE created_at < ?)",
                    (before,)).rowcount
                traces = self._conn.execute("DELETE FROM traces WHERE created_at < ?", (before,)).rowcount
                self._conn.execute("DELETE FROM responses WHERE created_at < ?", (before,))
                cut = int(before // PERIOD_S) if math.isfinite(before) else None  # None: everything went
                self._conn.execute("DELETE FROM trace_rollup WHERE ? IS NULL OR hour < ?", (cut, cut))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            if cut is not None:
                self._rebuild_rollups(cut)  # the hour the cut went through: from what is left
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {"traces": traces, "labels": labels}

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM traces").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _Reader:
    """Read-only SQL over the store's file through a connection of its own."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._conn.execute(sql, tuple(args)).fetchall()]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
