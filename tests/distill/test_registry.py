"""Specialist versions: written whole or not at all; promotion history; rollback targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from smallfleet.errors import NotFound, SmallfleetError
from smallfleet.specialists.registry import Card, SpecialistRegistry


def publish(registry: SpecialistRegistry, contract: str = "c") -> Card:
    with registry.draft(contract) as (version, work):
        (work / "model.bin").write_bytes(b"weights")
        return registry.publish(work, Card(contract, version, "classifier", {"model": "model.bin"}))


def test_versions_are_numbered_and_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    registry = SpecialistRegistry(tmp_path)
    assert publish(registry).version == "v1"
    with pytest.raises(RuntimeError):
        with registry.draft("c") as (version, work):
            assert version == "v2"
            (work / "half.bin").write_bytes(b"x")
            raise RuntimeError("training interrupted")
    assert [c.version for c in registry.versions("c")] == ["v1"]
    assert sorted(p.name for p in registry.folder("c").iterdir() if not p.name.startswith(".lock")) == ["v1"]
    assert publish(registry).version == "v2"
    assert registry.file(registry.card("c", "v2"), "model").read_bytes() == b"weights"


def test_promotion_history_and_rollback_skip_versions_that_were_rolled_back(tmp_path: Path) -> None:
    registry = SpecialistRegistry(tmp_path)
    for _ in range(3):
        publish(registry)
    with pytest.raises(NotFound):
        registry.promote("c", "v7", "x")
    with pytest.raises(SmallfleetError, match="no promoted specialist"):
        registry.rollback("c", "x")
    before = registry.stamp()
    registry.promote("c", "v1", "first")
    assert registry.stamp() != before
    registry.promote("c", "v2", "better")
    assert registry.rollback("c", "live agreement fell")["promoted"] == "v1"
    registry.promote("c", "v3", "retrained")
    state = registry.rollback("c", "worse")
    assert state["promoted"] == "v1"  # not v2: it was rolled back itself
    assert [h["action"] for h in state["history"]] == ["promote", "promote", "rollback", "promote", "rollback"]
    assert state["history"][-1]["reason"] == "worse" and registry.promoted("c").version == "v1"
    assert registry.rollback("c", "again")["promoted"] is None  # back to the fleet file's ladder
