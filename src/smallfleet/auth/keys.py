"""API keys: created and revoked with the CLI, shown once, stored as SHA-256 digests in `keys.db`.

A key looks like `sf-<id>-<secret>`: `id` (12 hex characters) finds the row, `secret` (256 random
bits) proves possession. Only the digest of the whole key is stored and it is compared with
`hmac.compare_digest` (constant time). A fast hash is the right tool here, as for GitHub's or
Stripe's tokens: the secret is random, not a password, so there is nothing to guess from a leaked
digest. Revocation stamps the row (it is never deleted), so the gateway sees it on the next request
and "keys are configured" never turns back into "open" when the last key is revoked.

With `SMALLFLEET_DATABASE_URL` the keys live in PostgreSQL (table `api_keys`), so every replica knows every
key (`open_keys`). There a lookup is a network round trip on the request path, so verified keys are
remembered for `cache_s` (2 s): a revocation reaches every replica within that.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from smallfleet.config.settings import Settings
from smallfleet.errors import InvalidRequest

_KEY = re.compile(r"sf-([0-9a-f]{12})-([A-Za-z0-9_-]{32,64})")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    digest TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
"""


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed: never the secret."""

    id: str
    tenant: str
    label: str
    created_at: float
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


_DUMMY = _digest("sf-000000000000-" + "0" * 43)


class _SQLiteKeys:
    """The key table in `keys.db` (`?` placeholders, tuple rows)."""

    table = "keys"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def run(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _PostgresKeys:
    """The key table in PostgreSQL (the trace store's migrations create it)."""

    table = "api_keys"

    def __init__(self, url: str) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        from smallfleet.trace.postgres import migrate

        with psycopg.connect(url, autocommit=True) as conn:  # the schema, migrated if this is the first process
            migrate(conn)
        self._pool = ConnectionPool(url, min_size=1, max_size=4, open=False, kwargs={"autocommit": True},
                                    check=ConnectionPool.check_connection, name="smallfleet-keys")
        self._pool.open(wait=True, timeout=30)

    def run(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple]:
        with self._pool.connection() as conn:
            cur = conn.execute(sql.replace("?", "%s"), args)
            return cur.fetchall() if cur.description is not None else []

    def close(self) -> None:
        self._pool.close()


class KeyStore:
    """The key table. Safe to share between threads; every lookup reads the table (PostgreSQL: within
    `cache_s`), so a key created or revoked by the CLI counts from the gateway's next request."""

    def __init__(self, path: Path | None = None, *, database_url: str | None = None, cache_s: float = 2.0) -> None:
        if (path is None) == (database_url is None):
            raise ValueError("give a keys.db path or a database URL")
        self.path = path
        self._db: _SQLiteKeys | _PostgresKeys = _SQLiteKeys(path) if path is not None else _PostgresKeys(
            database_url or "")
        self._t = self._db.table
        self._cache_s = cache_s if database_url is not None else 0.0
        self._cache: OrderedDict[str, tuple[float, KeyInfo | None]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._ever = False
        self._none_until = 0.0

    def create(self, tenant: str, label: str = "") -> tuple[KeyInfo, str]:
        """A new key for `tenant`: its listing and the key itself (to be shown once, then forgotten)."""
        key_id = secrets.token_hex(6)
        key = f"sf-{key_id}-{secrets.token_urlsafe(32)}"
        info = KeyInfo(key_id, tenant, label, time.time(), None)
        self._db.run(f"INSERT INTO {self._t} (id, tenant, label, digest, created_at) VALUES (?, ?, ?, ?, ?)",
                     (key_id, tenant, label, _digest(key), info.created_at))
        return info, key

    def list(self) -> list[KeyInfo]:
        rows = self._db.run(f"SELECT id, tenant, label, created_at, revoked_at FROM {self._t} ORDER BY created_at")
        return [KeyInfo(*row) for row in rows]

    def revoke(self, key_id: str) -> KeyInfo:
        """Revoke a key by its id (the `sf-<id>` part is accepted too); an unknown id is a clear error."""
        key_id = key_id.removeprefix("sf-").split("-")[0]
        self._db.run(f"UPDATE {self._t} SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (time.time(), key_id))
        rows = self._db.run(f"SELECT id, tenant, label, created_at, revoked_at FROM {self._t} WHERE id = ?", (key_id,))
        row = rows[0] if rows else None
        if row is None:
            raise InvalidRequest(f"no API key with id {key_id!r} (see `smallfleet keys list`)")
        return KeyInfo(*row)

    def configured(self) -> bool:
        """Whether any key was ever created here (revoked ones count: revoking the last key never opens
        the gateway)."""
        if self._must_look():
            self._ever = bool(self._db.run(f"SELECT 1 FROM {self._t} LIMIT 1"))
            self._none_until = time.monotonic() + self._cache_s  # PostgreSQL: "none yet" is remembered for cache_s
        return self._ever

    def _must_look(self) -> bool:
        """Whether `configured()` reads the table: no key seen yet, and "none yet" not remembered any more."""
        return not self._ever and time.monotonic() >= self._none_until

    def needs_round_trip(self, presented: str | None) -> bool:
        """Whether `configured()` or `verify(presented)` would wait for a database server (PostgreSQL, and not
        remembered): the caller then runs them off the event loop. A local keys.db never does."""
        if self._cache_s == 0:
            return False
        if self._must_look():
            return True
        if presented is None:
            return False
        with self._cache_lock:
            hit = self._cache.get(_digest(presented.strip()))
        return hit is None or hit[0] <= time.monotonic()

    def verify(self, presented: str) -> KeyInfo | None:
        """The active key `presented` is, or None. The digest comparison is constant time, and an unknown id
        costs the same hash and comparison as a known one."""
        digest = _digest(presented.strip())
        if self._cache_s:
            with self._cache_lock:
                hit = self._cache.get(digest)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
        match = _KEY.fullmatch(presented.strip())
        key_id = match.group(1) if match else ""
        rows = self._db.run(f"SELECT id, tenant, label, created_at, revoked_at, digest FROM {self._t} WHERE id = ?",
                            (key_id,))
        row = rows[0] if rows else None
        stored = row[5] if row is not None else _DUMMY
        ok = hmac.compare_digest(digest, stored) and match is not None and row is not None
        found = KeyInfo(*row[:5]) if ok and row is not None and row[4] is None else None
        if self._cache_s:
            with self._cache_lock:  # bounded: a flood of made-up keys cannot grow it
                self._cache[digest] = (time.monotonic() + self._cache_s, found)
                self._cache.move_to_end(digest)
                while len(self._cache) > 10_000:
                    self._cache.popitem(last=False)
        return found

    def close(self) -> None:
        self._db.close()


def open_keys(settings: Settings) -> KeyStore:
    """The keys in PostgreSQL when `SMALLFLEET_DATABASE_URL` is set (shared by every replica), else `keys.db`."""
    if settings.database_url:
        return KeyStore(database_url=settings.database_url)
    return KeyStore(settings.keys_db)
