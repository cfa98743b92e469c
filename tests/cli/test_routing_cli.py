"""`smallfleet calibrate` and `smallfleet report` over traces produced by the Python API."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smallfleet.cli.main import app
from smallfleet.guard.budget import spent_by_window
from smallfleet.runtime import open_runtime

FLEET = """
models:
  - {id: small, kind: fake}
  - {id: big, kind: fake, location: remote, price_per_1k_output: 1.0}
contracts:
  - name: echo
    output: {choice: ["yes", "no"]}
    ladder: [small, big]
"""


@pytest.fixture
def fleet_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    monkeypatch.setenv("SMALLFLEET_CONFIG", str(path))
    return path


def test_calibrate_and_report_from_traces(fleet_file: Path) -> None:
    runner = CliRunner()
    with open_runtime() as runtime:
        for i in range(12):  # the fake echoes the input: "yes" inputs are valid answers, others are not
            result = runtime.run("echo", "yes" if i % 3 else "no", shadow=True)
            assert result.outcome is not None
    out = runner.invoke(app, ["calibrate", "echo", "--holdout", "0", "--min-accepted", "2", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["rungs"][0]["samples"] == 12 and Path(data["saved_to"]).is_file()
    shown = runner.invoke(app, ["calibrate", "echo", "--holdout", "0", "--min-accepted", "2"])
    assert "local share" in shown.stdout and "chosen:" in shown.stdout
    report = json.loads(runner.invoke(app, ["report", "--json"]).stdout)["echo"]
    assert report["requests"] == 12 and report["local_share"] == 1.0


def test_calibrate_unknown_contract_is_a_one_line_error(fleet_file: Path) -> None:
    out = CliRunner().invoke(app, ["calibrate", "nope"])
    assert out.exit_code == 1 and out.stderr.startswith("error: no contract named 'nope'")


def test_budget_spent_before_a_restart_still_counts(fleet_file: Path) -> None:
    strict_small = "ladder: [{model: small, accept: {min_mean_logprob: 0.0}}, big]\n    budget_usd: "
    fleet_file.write_text(FLEET.replace("ladder: [small, big]", strict_small + "100"))
    with open_runtime() as runtime:
        first = runtime.run("echo", "yes")  # the small rung is never confident enough: escalates to the paid rung
        assert first.rung == 1 and first.cost > 0
    # a new process sees the same spend in the store's ledger: with the budget now set to exactly what was spent,
    # nothing is left for another paid call
    fleet_file.write_text(FLEET.replace("ladder: [small, big]", strict_small + repr(first.cost)))
    with open_runtime() as runtime:
        assert spent_by_window(runtime.store, "contract", "echo", time.time())["total"] == pytest.approx(first.cost)
        again = runtime.run("echo", "yes")
    assert again.rung == 0 and any(a.reason == "budget_exhausted" for a in again.attempts)


def test_label_a_trace_from_the_terminal(fleet_file: Path) -> None:
    with open_runtime() as runtime:
        _, trace = runtime.call(runtime.arun("echo", "yes"))
    runner = CliRunner()
    assert runner.invoke(app, ["traces", "label", trace.id, '"no"']).exit_code == 0
    listed = runner.invoke(app, ["traces", "--contract", "echo", "--json"]).stdout
    assert trace.id in listed
    report = json.loads(runner.invoke(app, ["report", "--contract", "echo", "--json"]).stdout)["echo"]
    assert report["quality_vs_reference"] == 0.0  # the label says "no", the answer was "yes"
    bad = runner.invoke(app, ["traces", "label", "nope", "x"])
    assert bad.exit_code == 1 and "no trace with id 'nope'" in bad.stderr


def test_chat_and_models_know_contracts(fleet_file: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["models"]).stdout
    assert "echo" in listed and "contract: small -> big" in listed
    out = runner.invoke(app, ["chat", "yes", "-m", "echo"])
    assert out.exit_code == 0 and out.stdout.strip() == "yes" and "[rung 0: small" in out.stderr
    bad = runner.invoke(app, ["chat", "perhaps", "-m", "echo"])  # neither rung can give a valid choice
    assert bad.exit_code == 1 and bad.stderr.startswith("error: contract 'echo': no rung produced")
