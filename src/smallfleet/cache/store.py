"""The answer cache: one SQLite file (`SMALLFLEET_HOME/cache.db`), bounded in size, entries with a TTL.

An entry is keyed by (tenant, contract, the contract's served version, the knowledge base's version for
grounded contracts, the canonical input): a promotion, rollback, recalibration, fleet-file edit or
re-index changes the version, so an old answer is never served for the new ladder (`invalidate` also
drops a contract's entries when it is swapped). Semantic lookups (`nearest`) only ever search entries of
the same tenant, contract and versions; whether a near entry may be served is the caller's verification
(see `route.router`). Counters per contract: exact and semantic hits, misses, rejected near hits
(similar enough but failing verification) and requests that bypassed the cache as sensitive.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, tenant TEXT NOT NULL, contract TEXT NOT NULL, version TEXT NOT NULL,
    input TEXT NOT NULL, embedding BLOB, passages TEXT, answer TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL NOT NULL, last_used REAL NOT NULL, hits INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS entries_scope ON entries(tenant, contract, version);
CREATE INDEX IF NOT EXISTS entries_used ON entries(last_used);
CREATE TABLE IF NOT EXISTS counters (
    contract TEXT NOT NULL, event TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (contract, event));
"""
EVENTS = ("hit_exact", "hit_semantic", "miss", "rejected_near_hit", "bypass_sensitive")


def canonical(text: str) -> str:
    """The input as the cache compares it: Unicode NFC, runs of white space as one space, trimmed (case and
    punctuation kept: they can change the question)."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def cache_key(tenant: str | None, contract: str, version: str, text: str) -> str:
    return hashlib.sha256(json.dumps([tenant or "", contract, version, canonical(text)]).encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    key: str
    tenant: str
    contract: str
    version: str
    input: str
    answer: dict  # what the router needs to answer again (content, tool calls, model, rung, ...)
    passages: tuple[str, ...] | None = None  # grounded contracts: the passage ids the answer was given
    created_at: float = 0.0


class AnswerCache:
    """Thread-safe (one lock): the gateway's event loop and worker threads share one cache."""

    def __init__(self, path: Path, max_entries: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.max_entries = max_entries
        self.clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA busy_timeout = 1000")  # gateway workers share the file: wait briefly, then miss
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get(self, key: str) -> Entry | None:
        """The live entry under `key` (an expired one is deleted and not returned)."""
        now = self.clock()
        with self._lock, self._db:
            row = self._db.execute("SELECT key, tenant, contract, version, input, answer, passages, created_at, "
                                   "expires_at FROM entries WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            if row[8] <= now:
                self._db.execute("DELETE FROM entries WHERE key = ?", (key,))
                return None
            self._db.execute("UPDATE entries SET hits = hits + 1, last_used = ? WHERE key = ?", (now, key))
        return _entry(row)

    def nearest(self, tenant: str | None, contract: str, version: str, vector: np.ndarray,
                threshold: float, k: int = 1) -> list[tuple[Entry, float]]:
        """Up to `k` live entries of the same tenant, contract and version whose cosine similarity to `vector` is
        at least `threshold`, most similar first, with their similarities."""
        now = self.clock()
        with self._lock:
            rows = self._db.execute(
                "SELECT key, tenant, contract, version, input, answer, passages, created_at, expires_at, embedding "
                "FROM entries WHERE tenant = ? AND contract = ? AND version = ? AND expires_at > ? "
                "AND embedding IS NOT NULL", (tenant or "", contract, version, now)).fetchall()
        if not rows:
            return []
        matrix = np.frombuffer(b"".join(r[9] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        scores = matrix @ np.asarray(vector, dtype=np.float32)
        best = [int(i) for i in np.argsort(-scores)[:k] if float(scores[int(i)]) >= threshold]
        if best:
            with self._lock, self._db:
                self._db.execute("UPDATE entries SET last_used = ? WHERE key = ?", (now, rows[best[0]][0]))
        return [(_entry(rows[i][:9]), float(scores[i])) for i in best]

    def put(self, entry: Entry, ttl_s: float, vector: np.ndarray | None = None) -> None:
        """Store `entry` for `ttl_s` seconds; past `max_entries`, the least recently used entries go."""
        now = self.clock()
        blob = None if vector is None else np.asarray(vector, dtype=np.float32).tobytes()
        passages = None if entry.passages is None else json.dumps(list(entry.passages))
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                             (entry.key, entry.tenant, entry.contract, entry.version, entry.input, blob, passages,
                              json.dumps(entry.answer), now, now + ttl_s, now))
            over = self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] - self.max_entries
            if over > 0:
                self._db.execute("DELETE FROM entries WHERE key IN (SELECT key FROM entries ORDER BY last_used "
                                 "LIMIT ?)", (over,))

    def count(self, contract: str, event: str) -> None:
        assert event in EVENTS, event
        with self._lock, self._db:
            self._db.execute("INSERT INTO counters VALUES (?, ?, 1) ON CONFLICT(contract, event) DO UPDATE "
                             "SET n = n + 1", (contract, event))

    def invalidate(self, contract: str) -> int:
        """Drop every entry of `contract` (its served version changed); the number dropped."""
        with self._lock, self._db:
            return self._db.execute("DELETE FROM entries WHERE contract = ?", (contract,)).rowcount

    def purge(self, contract: str | None = None, expired_only: bool = False) -> int:
        """Delete entries (of one contract, or all; only the expired ones with `expired_only`)."""
        where, args = [], []
        if contract is not None:
            where.append("contract = ?")
            args.append(contract)
        if expired_only:
            where.append("expires_at <= ?")
            args.append(self.clock())
        sql = "DELETE FROM entries" + (" WHERE " + " AND ".join(where) if where else "")
        with self._lock, self._db:
            return self._db.execute(sql, args).rowcount

    def stats(self) -> dict[str, object]:
        """Entries per contract, with each contract's counters and hit rate, and the totals."""
        now = self.clock()
        with self._lock:
            live = dict(self._db.execute("SELECT contract, COUNT(*) FROM entries WHERE expires_at > ? GROUP BY contract",
                                         (now,)).fetchall())
            counters = self._db.execute("SELECT contract, event, n FROM counters").fetchall()
            total = self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
        per: dict[str, dict[str, object]] = {}
        for contract, event, n in counters:
            per.setdefault(contract, {e: 0 for e in EVENTS})[event] = n
        for contract, n in live.items():
            per.setdefault(contract, {e: 0 for e in EVENTS})["entries"] = n
        for figures in per.values():
            figures.setdefault("entries", 0)
            hits = int(figures["hit_exact"]) + int(figures["hit_semantic"])  # type: ignore[call-overload]
            asked = hits + int(figures["miss"])  # type: ignore[call-overload]
            figures["hit_rate"] = round(hits / asked, 4) if asked else None
        return {"entries": total, "max_entries": self.max_entries, "contracts": per}


def _entry(row: tuple) -> Entry:
    key, tenant, contract, version, text, answer, passages, created_at, _ = row
    return Entry(key, tenant, contract, version, text, json.loads(answer),
                 tuple(json.loads(passages)) if passages else None, created_at)
