"""`smallfleet keys create|list|revoke`: the key is printed once, listings never show it, errors are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smallfleet.auth.keys import KeyStore
from smallfleet.cli.main import app


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models: [{kind: fake, id: small}]\ntenants: [{name: clinic}, {name: lab}]\n")
    monkeypatch.setenv("SMALLFLEET_HOME", str(tmp_path))
    monkeypatch.setenv("SMALLFLEET_CONFIG", str(fleet))
    return tmp_path


def test_create_list_revoke(home: Path) -> None:
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "--tenant", "clinic", "--label", "ops"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("sf-") and "not shown again" in created.stderr
    assert KeyStore(home / "keys.db").verify(key).tenant == "clinic"
    listed = runner.invoke(app, ["keys", "list", "--json"])
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["tenant"], r["label"], r["revoked_at"]) for r in rows] == [("clinic", "ops", None)]
    assert key.split("-", 2)[2] not in listed.output + runner.invoke(app, ["keys", "list"]).output
    revoked = runner.invoke(app, ["keys", "revoke", rows[0]["id"]])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert KeyStore(home / "keys.db").verify(key) is None
    assert "revoked" in runner.invoke(app, ["keys", "list"]).output


@pytest.mark.parametrize("args, message", [
    (["keys", "create", "--tenant", "nobody"], "no tenant 'nobody' in the fleet file"),
    (["keys", "revoke", "0123456789ab"], "no API key with id"),
])
def test_mistakes_are_one_line_errors(home: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and message in result.output and result.output.count("\n") == 1, result.output
