"""Retention: old traces and their labels go, their spend stays counted, and nothing lingers in the file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smallfleet.cli.main import app
from smallfleet.trace.record import Trace, new_trace_id
from smallfleet.trace.sqlite import SQLiteTraceStore


def _trace(created_at: float, text: str, cost: float = 0.01) -> Trace:
    return Trace(id=new_trace_id(), created_at=created_at, endpoint="test", model="refunds", contract="refunds",
                 input=text, output="ok", cost=cost)


def test_purge_removes_old_traces_and_labels_but_keeps_their_spend(tmp_path: Path) -> None:
    store = SQLiteTraceStore(tmp_path / "traces.db")
    now = time.time()
    old = [_trace(now - 40 * 86400, f"old secret CANARY-{i}") for i in range(5)]
    new = [_trace(now - 86400, f"new {i}") for i in range(3)]
    store.append_many(old + new)
    store.add_label(old[0].id, "billing", "person")
    store.add_label(new[0].id, "billing", "person")
    key = ("contract", "refunds", "total")
    store.settle([key], 80_000_000)  # what the 8 calls cost ($0.08), as the guard charged it
    assert store.purge(now - 30 * 86400) == {"traces": 5, "labels": 1}
    assert store.count() == 3 and store.get(old[0].id) is None and set(store.labels("refunds")) == {new[0].id}
    assert store.spent([key])[key] == 80_000_000  # a purge never gives a budget back
    assert store.purge(now - 30 * 86400) == {"traces": 0, "labels": 0}
    assert store.spent([key])[key] == 80_000_000
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("traces.db"))
    assert b"CANARY-" not in raw  # overwritten on disk, not just unlinked from the b-tree


def test_traces_purge_from_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMALLFLEET_HOME", str(tmp_path))
    store = SQLiteTraceStore(tmp_path / "traces.db")
    store.append_many([_trace(time.time() - 10 * 86400, "x"), _trace(time.time(), "y")])
    store.close()
    runner = CliRunner()
    missing = runner.invoke(app, ["traces", "purge"])
    assert missing.exit_code == 1 and "--older-than" in missing.output
    done = runner.invoke(app, ["traces", "purge", "--older-than", "7"])
    assert done.exit_code == 0 and "purged 1 traces" in done.output


def test_the_gateway_applies_the_retention_setting_at_start(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from smallfleet.api.app import create_app
    from smallfleet.backends.fake import FakeBackend
    from smallfleet.fleet import Fleet

    store = SQLiteTraceStore(tmp_path / "traces.db")
    store.append_many([_trace(time.time() - 40 * 86400, "old"), _trace(time.time(), "new")])
    app = create_app(Fleet.of_backends([FakeBackend()]), store, retention_days=30)
    with TestClient(app) as client:
        for _ in range(100):
            if store.count() == 1:
                break
            time.sleep(0.02)
        assert client.get("/healthz").status_code == 200
        assert store.count() == 1
