"""`smallfleet models`, `models add`, `models pull` through the real typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smallfleet.cli.main import app
from smallfleet.models.store import ModelStore
from tests.models.helpers import write_tiny_gguf

runner = CliRunner()


def test_models_lists_installed_catalogue_and_fleet(store: ModelStore, tmp_path: Path) -> None:
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "installed models: none"
    assert "pull with: smallfleet models pull qwen2.5-coder-0.5b-instruct" in result.stdout
    assert "pull with: smallfleet models pull qwen2.5-coder-1.5b-instruct" in result.stdout
    assert "* smollm2-135m" in result.stdout and "llamacpp" in result.stdout  # the fleet, as before
    assert lines.index("fleet:") > lines.index("catalogue (not installed):")

    added = runner.invoke(app, ["models", "add", str(write_tiny_gguf(tmp_path / "tiny.gguf")), "--name", "tiny"])
    assert added.exit_code == 0, added.output
    assert "added tiny:" in added.stdout and "Q4_K_M" in added.stdout
    assert "  - id: tiny\n    kind: llamacpp\n    model: tiny" in added.stdout
    listed = runner.invoke(app, ["models", "list"])
    line = next(x for x in listed.stdout.splitlines() if x.strip().startswith("tiny "))
    assert "Q4_K_M" in line and "ctx 2048" in line and "mit" in line and str(tmp_path / "tiny.gguf") in line
    assert json.loads(store.registry_path.read_text())["models"]["tiny"]["context_length"] == 2048


def test_models_shows_fleet_contracts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models:\n  - id: echo\n    kind: fake\n  - id: other\n    kind: fake\n")
    monkeypatch.setenv("SMALLFLEET_CONFIG", str(fleet))
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0 and "* echo" in result.stdout and "  other" in result.stdout


def test_add_of_a_non_gguf_is_one_line_and_exit_1(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a model\n")
    result = runner.invoke(app, ["models", "add", str(text)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.strip().count("\n") == 0
    assert "not a GGUF file" in result.stderr and "Traceback" not in result.output


def test_pull_of_an_unknown_name_lists_the_catalogue() -> None:
    result = runner.invoke(app, ["models", "pull", "gpt-9"])
    assert result.exit_code == 1
    assert result.stderr.strip() == ("error: no model 'gpt-9' in the catalogue; known: smollm2-135m-instruct, "
                                     "qwen2.5-coder-0.5b-instruct, qwen2.5-coder-1.5b-instruct")


def test_pull_of_the_embedded_model_registers_it_then_is_a_no_op(store: ModelStore) -> None:
    first = runner.invoke(app, ["models", "pull", "smollm2-135m-instruct"])
    assert first.exit_code == 0, first.output
    assert "installed smollm2-135m-instruct" in first.stdout and "verified" in first.stdout
    assert "  - id: smollm2-135m-instruct\n    kind: llamacpp\n    model: smollm2-135m-instruct" in first.stdout
    assert store.get("smollm2-135m-instruct") is not None
    second = runner.invoke(app, ["models", "pull", "smollm2-135m-instruct"])
    assert second.exit_code == 0 and "already installed" in second.stdout
    listed = runner.invoke(app, ["models"])
    assert "pull with: smallfleet models pull smollm2-135m-instruct" not in listed.stdout
    assert "smollm2-135m-instruct" in listed.stdout.split("catalogue")[0]  # now among the installed
