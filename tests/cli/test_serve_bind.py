"""Without API keys the gateway listens on loopback only, unless told explicitly."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from smallfleet.cli.main import app


@pytest.fixture()
def started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict]:
    import uvicorn

    calls: list[dict] = []
    monkeypatch.setenv("SMALLFLEET_HOME", str(tmp_path))
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    monkeypatch.setattr("smallfleet.api.app.app_from_settings", lambda settings: object())
    return calls


def test_a_non_loopback_address_is_refused_without_keys(started: list[dict]) -> None:
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1 and "refusing to listen on 0.0.0.0" in result.output and started == []


def test_loopback_is_fine_and_the_override_warns(started: list[dict]) -> None:
    for host in ("127.0.0.1", "localhost", "::1"):
        assert CliRunner().invoke(app, ["serve", "--host", host]).exit_code == 0
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--allow-unauthenticated"])
    assert result.exit_code == 0 and "without API keys" in result.output
    assert [c["host"] for c in started] == ["127.0.0.1", "localhost", "::1", "0.0.0.0"]


def test_with_a_key_a_non_loopback_address_is_fine_and_the_start_says_keys_are_required(
        started: list[dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models: [{kind: fake, id: small}]\ntenants: [{name: clinic}]\n")
    monkeypatch.setenv("SMALLFLEET_CONFIG", str(fleet))
    created = CliRunner().invoke(app, ["keys", "create", "--tenant", "clinic"])
    assert created.exit_code == 0, created.output
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 0 and "API keys: required on every request" in result.output
    assert [c["host"] for c in started] == ["0.0.0.0"]
