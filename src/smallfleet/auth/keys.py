"""API keys: created and revoked with the CLI, shown once, stored as SHA-256 digests in `keys.db`.

A key looks like `sf-<id>-<secret>`: `id` (12 hex characters) finds the row, `secret` (256 random
bits) proves possession. Only the digest of the whole key is stored and it is compared with
`hmac.compare_digest` (constant time). A fast hash is the right tool here, as for GitHub's or
Stripe's tokens: the secret is random, not a password, so there is nothing to guess from a leaked
digest. Revocation stamps the row (it is never deleted), so the gateway sees it on the next request
and "keys are configured" never turns back into "open" when the last key is revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

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


class KeyStore:
    """The key table. Safe to share between threads; every lookup reads the file, so a key created or
    revoked by the CLI counts from the gateway's next request."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._ever = False

    def create(self, tenant: str, label: str = "") -> tuple[KeyInfo, str]:
        """A new key for `tenant`: its listing and the key itself (to be shown once, then forgotten)."""
        key_id = secrets.token_hex(6)
        key = f"sf-{key_id}-{secrets.token_urlsafe(32)}"
        info = KeyInfo(key_id, tenant, label, time.time(), None)
        with self._lock:
            self._conn.execute("INSERT INTO keys (id, tenant, label, digest, created_at) VALUES (?, ?, ?, ?, ?)",
                               (key_id, tenant, label, _digest(key), info.created_at))
        return info, key

    def list(self) -> list[KeyInfo]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, tenant, label, created_at, revoked_at FROM keys ORDER BY created_at").fetchall()
        return [KeyInfo(*row) for row in rows]

    def revoke(self, key_id: str) -> KeyInfo:
        """Revoke a key by its id (the `sf-<id>` part is accepted too); an unknown id is a clear error."""
        key_id = key_id.removeprefix("sf-").split("-")[0]
        with self._lock:
            self._conn.execute("UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                               (time.time(), key_id))
            row = self._conn.execute("SELECT id, tenant, label, created_at, revoked_at FROM keys WHERE id = ?",
                                     (key_id,)).fetchone()
        if row is None:
            raise InvalidRequest(f"no API key with id {key_id!r} (see `smallfleet keys list`)")
        return KeyInfo(*row)

    def configured(self) -> bool:
        """Whether any key was ever created here (revoked ones count: revoking the last key never opens
        the gateway)."""
        if not self._ever:
            with self._lock:
                self._ever = self._conn.execute("SELECT 1 FROM keys LIMIT 1").fetchone() is not None
        return self._ever

    def verify(self, presented: str) -> KeyInfo | None:
        """The active key `presented` is, or None. The digest comparison is constant time, and an unknown id
        costs the same hash and comparison as a known one."""
        match = _KEY.fullmatch(presented.strip())
        key_id = match.group(1) if match else ""
        with self._lock:
            row = self._conn.execute("SELECT id, tenant, label, created_at, revoked_at, digest FROM keys WHERE id = ?",
                                     (key_id,)).fetchone()
        stored = row[5] if row is not None else _DUMMY
        ok = hmac.compare_digest(_digest(presented.strip()), stored) and match is not None and row is not None
        if not ok or row[4] is not None:
            return None
        return KeyInfo(*row[:5])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
