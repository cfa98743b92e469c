"""The egress audit: one append-only, hash-chained row per call that leaves for a remote model.

A row says who (tenant), for what (contract, or the plain model request), to which model, under which
policy, which categories were replaced and how often, and the SHA-256 of the payload that actually left
(the redacted messages, as sent). Never a raw value: the counts are numbers, the payload is a hash.

Rows live in SQLite (`audit.db` in SMALLFLEET_HOME). The gateway writes them by group commit (`submit`): the
rows of the calls leaving at the same moment share one transaction, written by one thread, and each call
waits for its row's commit before it leaves (an audited call is never one the file does not hold). Each row's `hash` is SHA-256 over the previous
row's hash and the row's own fields, so `verify` finds a changed row (its hash no longer matches), a
deleted row (a gap in `seq` and a broken link) and a re-ordered one. Triggers refuse UPDATE and DELETE
through SQLite; someone who edits the file directly is caught by `verify`. Deleting the newest rows
leaves a shorter valid chain: `verify` reports the head (count and last hash) so it can be compared with
a copy kept elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from smallfleet.trace.writer import GroupCommit

GENESIS = "0" * 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS egress (
    seq INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    tenant TEXT,
    contract TEXT,
    model TEXT NOT NULL,
    policy TEXT NOT NULL,
    categories TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS egress_no_update BEFORE UPDATE ON egress
BEGIN SELECT RAISE(ABORT, 'the egress audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS egress_no_delete BEFORE DELETE ON egress
BEGIN SELECT RAISE(ABORT, 'the egress audit is append-only'); END;
"""


@dataclass(frozen=True)
class _Entry:
    tenant: str | None
    contract: str | None
    model: str
    policy: str
    categories: dict[str, int]
    payload_sha256: str


@dataclass(frozen=True)
class AuditRow:
    seq: int
    ts: float
    tenant: str | None
    contract: str | None
    model: str
    policy: str
    categories: dict[str, int]
    payload_sha256: str
    prev: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def row_hash(prev: str, seq: int, ts: float, tenant: str | None, contract: str | None, model: str, policy: str,
             categories: dict[str, int], payload_sha256: str) -> str:
    body = json.dumps([prev, seq, repr(ts), tenant, contract, model, policy, sorted(categories.items()),
                       payload_sha256], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def payload_digest(payload: Any) -> str:
    """SHA-256 of what left, as canonical JSON."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


class AuditLog:
    """Append and read the chain. Safe across threads (one lock) and processes (SQLite's own locking)."""

    def __init__(self, path: Path | None) -> None:
        """`path` None: kept in memory (tests and benchmarks over ready-made backends)."""
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path) if path is not None else ":memory:", check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._commits: GroupCommit[_Entry, AuditRow] = GroupCommit(self.append_many, "egress audit")

    def append(self, *, tenant: str | None, contract: str | None, model: str, policy: str,
               categories: dict[str, int], payload_sha256: str) -> AuditRow:
        return self.append_many([_Entry(tenant, contract, model, policy, categories, payload_sha256)])[0]

    def append_many(self, entries: list[_Entry]) -> list[AuditRow]:
        """Chain and write `entries` in order, in one transaction."""
        rows = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                last = self._db.execute("SELECT seq, hash FROM egress ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev = (last[0], last[1]) if last else (0, GENESIS)
                for e in entries:
                    seq, ts = seq + 1, time.time()
                    digest = row_hash(prev, seq, ts, e.tenant, e.contract, e.model, e.policy, e.categories,
                                      e.payload_sha256)
                    rows.append(AuditRow(seq, ts, e.tenant, e.contract, e.model, e.policy, e.categories,
                                         e.payload_sha256, prev, digest))
                    prev = digest
                self._db.executemany("INSERT INTO egress VALUES (?,?,?,?,?,?,?,?,?,?)", [
                    (r.seq, r.ts, r.tenant, r.contract, r.model, r.policy, json.dumps(r.categories, sort_keys=True),
                     r.payload_sha256, r.prev, r.hash) for r in rows])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return rows

    def submit(self, *, tenant: str | None, contract: str | None, model: str, policy: str,
               categories: dict[str, int], payload_sha256: str) -> Future[AuditRow]:
        """Queue a row for the group-commit thread; the future resolves once it is committed."""
        return self._commits.submit(_Entry(tenant, contract, model, policy, categories, payload_sha256))

    async def record(self, *, tenant: str | None, contract: str | None, model: str, policy: str,
                     categories: dict[str, int], payload_sha256: str) -> AuditRow:
        """`submit` for a caller on an event loop: waits for the commit without blocking the loop."""
        return await self._commits.wait(_Entry(tenant, contract, model, policy, categories, payload_sha256))

    def rows(self, limit: int | None = None) -> list[AuditRow]:
        sql = "SELECT * FROM egress ORDER BY seq" + (f" DESC LIMIT {int(limit)}" if limit else "")
        with self._lock:
            found = [AuditRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8], r[9])
                     for r in self._db.execute(sql)]
        return sorted(found, key=lambda r: r.seq)

    def verify(self) -> dict[str, Any]:
        """Walk the chain: the first broken row (changed, missing before it, or out of order), else the head."""
        prev, expected = GENESIS, 1
        rows = self.rows()
        for row in rows:
            if row.seq != expected:
                return {"ok": False, "rows": len(rows), "at": row.seq,
                        "problem": f"row {expected} is missing (next is {row.seq})"}
            if row.prev != prev:
                return {"ok": False, "rows": len(rows), "at": row.seq, "problem": "link to the previous row is broken"}
            if row_hash(row.prev, row.seq, row.ts, row.tenant, row.contract, row.model, row.policy, row.categories,
                        row.payload_sha256) != row.hash:
                return {"ok": False, "rows": len(rows), "at": row.seq, "problem": "row was changed after it was written"}
            prev, expected = row.hash, expected + 1
        return {"ok": True, "rows": len(rows), "head": prev}

    def close(self) -> None:
        self._commits.close()  # what is queued is written first
        with self._lock:
            self._db.close()
