"""API keys: shown once, stored as digests, verified in constant time, revoked for good."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from smallfleet.auth.keys import KeyStore
from smallfleet.errors import InvalidRequest


def test_a_key_verifies_only_as_itself_and_is_stored_only_as_a_digest(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.db")
    info, key = store.create("clinic", "ops laptop")
    assert key.startswith(f"sf-{info.id}-") and len(key) > 50
    assert store.verify(key) == info
    assert store.verify(f"  {key} ") == info  # stray whitespace from a copy-paste
    for wrong in (key[:-1] + ("A" if key[-1] != "A" else "B"), key + "x", f"sf-{info.id}-", "", "Bearer " + key,
                  key.replace(info.id, "0" * 12)):
        assert store.verify(wrong) is None, wrong
    store.close()
    raw = sqlite3.connect(tmp_path / "keys.db").execute("SELECT * FROM keys").fetchall()
    assert len(raw) == 1 and not any(key.split("-", 2)[2] in str(col) for col in raw[0])  # the secret is nowhere


def test_revoking_stops_the_key_at_once_and_never_reopens_the_gateway(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.db")
    assert not store.configured()
    info, key = store.create("clinic")
    other = KeyStore(tmp_path / "keys.db")  # the gateway's handle, open while the CLI revokes
    assert other.verify(key) == info
    assert store.revoke(info.id).revoked_at is not None
    assert other.verify(key) is None
    assert store.configured() and other.configured()  # all keys revoked: keys are still required
    assert [k.active for k in store.list()] == [False]
    with pytest.raises(InvalidRequest, match="no API key with id"):
        store.revoke("0123456789ab")
    assert store.revoke(f"sf-{info.id}").id == info.id  # the printed prefix works too, and revoking twice is fine


def test_keys_in_postgresql_are_known_to_every_replica_and_revoked_within_the_cache_time(pg_url: str) -> None:
    creator, replica = KeyStore(database_url=pg_url), KeyStore(database_url=pg_url, cache_s=0.2)
    try:
        assert not replica.configured()
        info, key = creator.create("shop", "ci")
        time.sleep(0.25)  # "no keys yet" is remembered for cache_s
        assert replica.configured() and replica.verify(key) == info  # created on one, known on the other
        assert replica.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        creator.revoke(info.id)
        assert replica.verify(key) == info  # remembered for cache_s...
        time.sleep(0.25)
        assert replica.verify(key) is None  # ...then the revocation holds everywhere
        assert [k.id for k in replica.list()] == [info.id]
    finally:
        creator.close()
        replica.close()
