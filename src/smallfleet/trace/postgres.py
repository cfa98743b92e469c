"""PostgreSQL trace store: what several gateway replicas share (traces, labels, stored responses, the
budget ledger), selected by `SMALLFLEET_DATABASE_URL`.

psycopg 3 with a connection pool. A write is acknowledged once PostgreSQL has committed it
(`synchronous_commit` on, the server's default), so a replica killed mid-burst loses none of the traces it
answered for. Where the SQLite store relies on being the file's only writer, this one locks: migrations
take an advisory lock (the first replica applies them, the others find them done), the hourly rollups are
read `FOR UPDATE` and written back in key order, and budget reservations are conditional updates
(`trace.store`), which PostgreSQL re-checks against the newest committed row, so concurrent replicas never
spend past a limit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import Connection, Rollback
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool

from smallfleet.trace.pg_schema import MIGRATIONS
from smallfleet.trace.record import Trace, _storable
from smallfleet.trace.rollup import COLUMNS as ROLLUP_COLUMNS
from smallfleet.trace.rollup import PERIOD_S, Rollup, rollups
from smallfleet.trace.store import BudgetKey, TraceQuery, like_prefix, sorted_limits

_MIGRATION_LOCK = 0x5F1EE7  # pg_advisory_xact_lock key: one migrator at a time across replicas
_ROLLUP_UPSERT = (
    f"INSERT INTO trace_rollup ({', '.join(ROLLUP_COLUMNS)}) VALUES ({', '.join('%s' for _ in ROLLUP_COLUMNS)}) "
    f"ON CONFLICT (hour, contract) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in ROLLUP_COLUMNS[2:]))


def _text(value: Any) -> Any:  # noqa: ANN401 - a column value
    """PostgreSQL text cannot hold NUL, and no UTF-8 a lone surrogate: both stored as U+FFFD."""
    if not isinstance(value, str):
        return value
    return _storable(value.replace("\x00", "\ufffd") if "\x00" in value else value)


def migrate(conn: Connection[Any]) -> None:
    """Apply the migrations not applied yet, in one transaction under an advisory lock (the first replica
    applies them, the others wait and find them done)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION "
                     "NOT NULL)")
        with conn.cursor(row_factory=tuple_row) as cur:  # (whatever row factory the connection has)
            done = {r[0] for r in cur.execute("SELECT name FROM _migrations").fetchall()}
        for name, sql in MIGRATIONS:
            if name not in done:
                conn.execute(sql)  # type: ignore[arg-type] - a constant text, several statements
                conn.execute("INSERT INTO _migrations VALUES (%s, %s)", (name, time.time()))


class PostgresTraceStore:
    """Thread-safe store over a PostgreSQL database (a pool of connections)."""

    kind = "postgres"

    def __init__(self, url: str, max_connections: int = 16, timeout_s: float = 30.0) -> None:
        self.url = url
        self._pool = ConnectionPool(url, min_size=1, max_size=max_connections, timeout=timeout_s, open=False,
                                    kwargs={"autocommit": True, "row_factory": dict_row},
                                    check=ConnectionPool.check_connection, name="smallfleet-traces")
        self._pool.open(wait=True, timeout=timeout_s)
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise
        columns = Trace.columns()
        self._insert = f"INSERT INTO traces ({', '.join(columns)}) VALUES ({', '.join(f'%({c})s' for c in columns)})"

    def _migrate(self) -> None:
        with self._pool.connection() as conn:
            migrate(conn)

    def applied_migrations(self) -> list[str]:
        with self._pool.connection() as conn:
            return [r["name"] for r in conn.execute("SELECT name FROM _migrations ORDER BY name").fetchall()]

    def append(self, trace: Trace) -> None:
        self.append_many([trace])

    def append_many(self, traces: Iterable[Trace]) -> None:
        """Write traces and fold them into the rollups in one transaction (all or none)."""
        traces = list(traces)
        if not traces:
            return
        rows = [{k: _text(v) for k, v in t.to_row().items()} for t in traces]
        with self._pool.connection() as conn, conn.transaction():
            with conn.cursor() as cur:
                cur.executemany(self._insert, rows)
            self._add_rollups(conn, traces)

    @staticmethod
    def _add_rollups(conn: Connection[Any], traces: list[Trace]) -> None:
        """Fold a batch into the rollups inside the caller's transaction: each row locked, merged and written
        back, in key order (replicas committing batches of the same hour wait for each other, never deadlock)."""
        for (hour, contract), part in sorted(rollups(traces).items()):
            conn.execute(_ROLLUP_UPSERT.split(" ON CONFLICT")[0] + " ON CONFLICT DO NOTHING",
                         Rollup().to_row(hour, contract))
            row = conn.execute(f"SELECT {', '.join(ROLLUP_COLUMNS)} FROM trace_rollup WHERE hour = %s AND "
                               "contract = %s FOR UPDATE", (hour, contract)).fetchone()
            part.merge(Rollup.from_row(tuple(row[c] for c in ROLLUP_COLUMNS)))
            conn.execute(_ROLLUP_UPSERT, part.to_row(hour, contract))

    def _rebuild_rollups(self, conn: Connection[Any], hour: int) -> None:
        """Recompute one hour's rollups from the traces left (after a purge cut through it)."""
        conn.execute("DELETE FROM trace_rollup WHERE hour = %s", (hour,))
        total: dict[tuple[int, str], Rollup] = {}
        with conn.cursor(name="smallfleet_rebuild") as cur:  # server-side: an hour of traces is never all in memory
            cur.execute("SELECT * FROM traces WHERE created_at >= %s AND created_at < %s",
                        (hour * PERIOD_S, (hour + 1) * PERIOD_S))
            while rows := cur.fetchmany(5000):
                for key, part in rollups(Trace.from_row(r) for r in rows).items():
                    total.setdefault(key, Rollup()).merge(part)
        for key, part in sorted(total.items()):
            conn.execute(_ROLLUP_UPSERT, part.to_row(*key))

    def get(self, trace_id: str) -> Trace | None:
        """One trace by id, or by a unique id prefix."""
        if not trace_id:
            return None
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT * FROM traces WHERE id = %s OR id LIKE %s ESCAPE '\\' "
                                "ORDER BY id = %s DESC LIMIT 2",
                                (_text(trace_id), like_prefix(_text(trace_id)), _text(trace_id))).fetchall()
        if not rows or (len(rows) > 1 and rows[0]["id"] != trace_id):
            return None
        return Trace.from_row(rows[0])

    def query(self, q: TraceQuery = TraceQuery()) -> list[Trace]:
        clauses, args = [], []
        for column in ("model", "contract", "status", "endpoint", "tenant"):
            if getattr(q, column) is not None:
                clauses.append(f"{column} = %s")
                args.append(_text(getattr(q, column)))
        if q.before is not None:
            clauses.append("created_at < %s")
            args.append(q.before)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._pool.connection() as conn:
            rows = conn.execute(f"SELECT * FROM traces {where} ORDER BY created_at DESC, id DESC LIMIT %s",
                                (*args, q.limit)).fetchall()
        return [Trace.from_row(r) for r in rows]

    def add_label(self, trace_id: str, reference: str, source: str = "feedback", replace: bool = True) -> None:
        """Attach a reference answer to a trace; the last one wins, unless `replace` is False (a live shadow answer
        never overwrites a label a person gave)."""
        action = ("DO UPDATE SET reference = excluded.reference, source = excluded.source, created_at = "
                  "excluded.created_at") if replace else "DO NOTHING"
        with self._pool.connection() as conn:
            conn.execute(f"INSERT INTO labels VALUES (%s, %s, %s, %s) ON CONFLICT (trace_id) {action}",
                         (_text(trace_id), _text(reference), _text(source), time.time()))

    def label_sources(self, contract: str) -> dict[str, tuple[str, str]]:
        """(reference, source) by trace id for one contract."""
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT l.trace_id, l.reference, l.source FROM labels l JOIN traces t ON "
                                "t.id = l.trace_id WHERE t.contract = %s", (contract,)).fetchall()
        return {r["trace_id"]: (r["reference"], r["source"]) for r in rows}

    def labels(self, contract: str) -> dict[str, str]:
        """Reference answers by trace id for one contract."""
        return {k: v[0] for k, v in self.label_sources(contract).items()}

    def run(self, run_id: str) -> list[Trace]:
        """The hops of a workflow run (by its id or a unique prefix), in order."""
        if not run_id:
            return []
        with self._pool.connection() as conn:
            ids = [r["run_id"] for r in conn.execute(
                "SELECT DISTINCT run_id, run_id = %s AS exact FROM traces "
                "WHERE run_id = %s OR run_id LIKE %s ESCAPE '\\' "
                "ORDER BY exact DESC LIMIT 2", (_text(run_id), _text(run_id), like_prefix(_text(run_id)))).fetchall()]
            if not ids or (len(ids) > 1 and ids[0] != run_id):
                return []
            rows = conn.execute("SELECT * FROM traces WHERE run_id = %s ORDER BY created_at, id", (ids[0],)).fetchall()
        return [Trace.from_row(r) for r in rows]

    def put_response(self, response_id: str, created_at: float, tenant: str | None, items: str, body: str) -> None:
        """Keep a Responses API response (`store: true`): the conversation's items so far and the response body."""
        with self._pool.connection() as conn:
            conn.execute("INSERT INTO responses VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
                         "created_at = excluded.created_at, tenant = excluded.tenant, items = excluded.items, "
                         "body = excluded.body", (response_id, created_at, tenant, _text(items), _text(body)))

    def get_response(self, response_id: str) -> tuple[str | None, str, str] | None:
        """(tenant, items, body) of a stored response, or None."""
        with self._pool.connection() as conn:
            row = conn.execute("SELECT tenant, items, body FROM responses WHERE id = %s",
                               (_text(response_id),)).fetchone()
        return (row["tenant"], row["items"], row["body"]) if row is not None else None

    def reserve(self, limits: Sequence[tuple[BudgetKey, int | None]], hold_nano: int) -> BudgetKey | None:
        """Add `hold_nano` to every key's spend in one transaction, unless that would take one past its limit
        (None: no limit, the spend is only recorded): then nothing changes and that key is returned. A
        concurrent reservation of the same key waits for this one's commit, then re-checks its condition
        against the new total (READ COMMITTED), so replicas reserving together never pass a limit."""
        refused: BudgetKey | None = None
        with self._pool.connection() as conn, conn.transaction():
            for key, limit in sorted_limits(limits):
                conn.execute("INSERT INTO budget_spend (scope, name, win) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                             key)
                row = conn.execute(
                    "UPDATE budget_spend SET spent_nano = spent_nano + %s WHERE scope = %s AND name = %s AND win = %s "
                    "AND (%s::bigint IS NULL OR spent_nano + %s <= %s::bigint) RETURNING spent_nano",
                    (hold_nano, *key, limit, hold_nano, limit)).fetchone()
                if row is None:
                    refused = key
                    raise Rollback()  # nothing of this reservation stays (the transaction block swallows it)
        return refused

    def settle(self, keys: Sequence[BudgetKey], delta_nano: int) -> None:
        """Add `delta_nano` (negative: a refund of the unused part of a hold) to every key's spend."""
        if not delta_nano or not keys:
            return
        with self._pool.connection() as conn, conn.transaction():
            for key in sorted(set(keys)):
                conn.execute("INSERT INTO budget_spend (scope, name, win, spent_nano) VALUES (%s, %s, %s, %s) "
                             "ON CONFLICT (scope, name, win) DO UPDATE SET spent_nano = budget_spend.spent_nano + "
                             "excluded.spent_nano", (*key, delta_nano))

    def spent(self, keys: Sequence[BudgetKey]) -> dict[BudgetKey, int]:
        """The spend recorded for each key (0 for a key never charged), in nano-dollars."""
        if not keys:
            return {}
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT scope, name, win, spent_nano FROM budget_spend WHERE (scope, name, win) IN "
                                f"({', '.join('(%s, %s, %s)' for _ in keys)})",
                                [part for key in keys for part in key]).fetchall()
        found = {(r["scope"], r["name"], r["win"]): int(r["spent_nano"]) for r in rows}
        return {key: found.get(key, 0) for key in keys}

    def purge(self, before: float) -> dict[str, int]:
        """Delete traces created before `before` (epoch seconds), their labels and stored responses, in one
        transaction; the budget ledger is kept. Then VACUUM, so the deleted rows' space is reclaimed (their
        bytes can remain in free space and in WAL segments until PostgreSQL reuses them: weaker than SQLite's
        secure_delete, see the README)."""
        with self._pool.connection() as conn:
            with conn.transaction():
                labels = conn.execute("DELETE FROM labels WHERE trace_id IN (SELECT id FROM traces WHERE "
                                      "created_at < %s)", (before,)).rowcount
                traces = conn.execute("DELETE FROM traces WHERE created_at < %s", (before,)).rowcount
                conn.execute("DELETE FROM responses WHERE created_at < %s", (before,))
                if math.isfinite(before):
                    cut = int(before // PERIOD_S)
                    conn.execute("DELETE FROM trace_rollup WHERE hour < %s", (cut,))
                    self._rebuild_rollups(conn, cut)
                else:
                    conn.execute("DELETE FROM trace_rollup")
            conn.execute("VACUUM traces, labels, responses, trace_rollup")
        return {"traces": traces, "labels": labels}

    def count(self) -> int:
        with self._pool.connection() as conn:
            return int(conn.execute("SELECT COUNT(*) AS n FROM traces").fetchone()["n"])

    def reader(self) -> _Reader:
        return _Reader(self._pool)

    def close(self) -> None:
        self._pool.close()


class _Reader:
    """The dashboard's reads over the pool: SQL written with `?` placeholders (as for SQLite), each query in a
    read-only transaction."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            query = sql.replace("%", "%%").replace("?", "%s")
            return list(conn.execute(query, tuple(_text(a) for a in args)).fetchall())

    def close(self) -> None:
        """The pool is the store's: closing the store closes it."""
