"""`smallfleet audit [verify]` and `smallfleet guard eval` from the command line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smallfleet.cli.main import app
from smallfleet.guard.audit import AuditLog


def test_audit_lists_rows_and_verify_names_the_broken_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMALLFLEET_HOME", str(tmp_path))
    runner = CliRunner()
    assert runner.invoke(app, ["audit", "verify"]).output.startswith("ok: 0 rows")
    log = AuditLog(tmp_path / "audit.db")
    for i in range(3):
        log.append(tenant="acme", contract="refunds", model="big", policy="redact", categories={"EMAIL": i + 1},
                   payload_sha256=f"{i:064x}")
    log.close()
    listed = runner.invoke(app, ["audit", "--json"])
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [r["seq"] for r in rows] == [1, 2, 3] and rows[2]["categories"] == {"EMAIL": 3}
    assert runner.invoke(app, ["audit", "verify"]).output.startswith("ok: 3 rows")
    db = sqlite3.connect(tmp_path / "audit.db")
    db.execute("DROP TRIGGER egress_no_update")
    db.execute("UPDATE egress SET tenant = 'other' WHERE seq = 2")
    db.commit()
    broken = runner.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1 and "row 2" in broken.output and broken.output.count("\n") == 1


def test_guard_eval_prints_figures_per_category(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMALLFLEET_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["guard", "eval", "--snippets", "30", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["snippets"] == 30 and out["categories"]["EMAIL"]["labelled"] > 0
    assert CliRunner().invoke(app, ["guard", "eval", "--snippets", "3"]).exit_code == 2  # below the minimum
