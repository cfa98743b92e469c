"""The command line: listing, chatting, traces, one-line errors, and the bench commands' output shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smallfleet.cli.main import app

runner = CliRunner()

FAKE_FLEET = "models:\n  - id: echo\n    kind: fake\n  - id: other\n    kind: fake\n"


@pytest.fixture
def fleet_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(FAKE_FLEET)
    monkeypatch.setenv("SMALLFLEET_CONFIG", str(path))
    return path


def test_models_lists_the_embedded_default_without_a_file() -> None:
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0 and "* smollm2-135m" in result.stdout and "llamacpp" in result.stdout


def test_models_lists_the_fleet_file(fleet_file: Path) -> None:
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    assert "* echo" in result.stdout and "  other" in result.stdout


def test_bad_config_is_one_line_on_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("models:\n  - id: x\n    kind: fake\n    latency: 3\n")
    monkeypatch.setenv("SMALLFLEET_CONFIG", str(path))
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: ") and "models[0].latency: Extra inputs are not permitted" in result.stderr
    assert "Traceback" not in result.output


def test_chat_streams_and_records_a_trace(fleet_file: Path) -> None:
    result = runner.invoke(app, ["chat", "hello from the terminal", "-m", "echo"])
    assert result.exit_code == 0, result.output
    assert "hello from the terminal" in result.stdout
    listing = runner.invoke(app, ["traces", "--json"])
    rows = [json.loads(line) for line in listing.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["endpoint"] == "cli:chat" and rows[0]["output"] == "hello from the terminal"
    shown = runner.invoke(app, ["traces", "show", rows[0]["id"]])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["id"] == rows[0]["id"]
    table = runner.invoke(app, ["traces"])
    assert rows[0]["id"] in table.stdout and "echo" in table.stdout


def test_chat_with_an_unknown_model_is_a_one_line_error_and_traced(fleet_file: Path) -> None:
    result = runner.invoke(app, ["chat", "hi", "-m", "ghost"])
    assert result.exit_code == 1 and result.stderr.startswith("error: The model 'ghost' does not exist")
    rows = [json.loads(line) for line in runner.invoke(app, ["traces", "--json"]).stdout.splitlines()]
    assert rows[0]["status"] == "error" and rows[0]["error_type"] == "model_not_found"


def test_traces_show_unknown_id_is_an_error() -> None:
    result = runner.invoke(app, ["traces", "show", "deadbeef"])
    assert result.exit_code == 1 and "no trace or run with id 'deadbeef'" in result.stderr


def test_bench_engine_prints_one_json_object_with_both_sides() -> None:
    result = runner.invoke(app, ["bench", "engine", "--json", "--max-tokens", "4", "--rounds", "1"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["raw_llama_cpp_python"]["completion_tokens"] > 0 and data["smallfleet"]["completion_tokens"] > 0
    assert data["ratio"] > 0


def test_bench_gateway_prints_added_latency_percentiles() -> None:
    result = runner.invoke(app, ["bench", "gateway", "--json", "--concurrency", "5", "--requests", "20",
                                 "--rounds", "1", "--latency-ms", "5"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["direct"]["requests"] == 20 and data["gateway"]["requests"] == 20
    assert data["direct"]["failures"] == 0 and data["gateway"]["failures"] == 0
    assert set(data["added_latency_ms"]) == {"p50", "p95", "p99"}


def test_bench_gateway_compares_observability_off_and_on_in_one_run() -> None:
    result = runner.invoke(app, ["bench", "gateway", "--json", "--observability", "--concurrency", "5",
                                 "--requests", "20", "--rounds", "1", "--latency-ms", "5"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for side in ("gateway_observed_off", "gateway_observed_on"):
        assert data[side]["requests"] == 20 and data[side]["failures"] == 0
    assert set(data["added_latency_ms_observed_on"]) == {"p50", "p95", "p99"}
    assert data["gateway_cpu_ms_per_request_observed_on"] > 0 and data["gateway_cpu_ms_per_request_observed_off"] > 0


def test_bench_gateway_runs_another_revision_beside_this_one() -> None:
    """--baseline REV: that revision's code (git archive) serves beside this checkout's, in the same run."""
    import os
    import subprocess
    import sys

    from smallfleet.evals.gateway import baseline_env, checkout

    with checkout("HEAD~1") as src:
        shipped = subprocess.run(["git", "show", "HEAD~1:src/smallfleet/api/app.py"], capture_output=True, text=True,
                                 check=True, cwd=Path(__file__).resolve().parents[2]).stdout
        assert (src / "smallfleet" / "api" / "app.py").read_text() == shipped
        imported = subprocess.run([sys.executable, "-c", "import smallfleet.cli.main as m; print(m.__file__)"],
                                  env=baseline_env(src, dict(os.environ)), capture_output=True, text=True, check=True)
        assert Path(imported.stdout.strip()).is_relative_to(src)  # the revision's code, not this checkout's
    result = runner.invoke(app, ["bench", "gateway", "--json", "--baseline", "HEAD", "--concurrency", "5",
                                 "--requests", "20", "--rounds", "1", "--latency-ms", "5"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["baseline"] == "HEAD"
    for side in ("gateway", "gateway_baseline"):
        assert data[side]["requests"] == 20 and data[side]["failures"] == 0
    assert data["gateway_cpu_ms_per_request_baseline"] > 0 and set(data["added_latency_ms_baseline"]) == {
        "p50", "p95", "p99"}


@pytest.mark.parametrize("args, message", [
    (["bench", "gateway", "--baseline", "no-such-revision"], "error: cannot read revision 'no-such-revision'"),
    (["bench", "gateway", "--baseline=--output=/tmp/x"], "error: cannot read revision '--output=/tmp/x'"),
    (["bench", "prompt-cost", "--contract", "nope"], "error: no demo contract 'nope'"),
    (["bench", "clinc-curve", "--sizes", "1000,x"], "error: --sizes takes comma-separated numbers"),
    (["bench", "clinc-curve", "--sizes", "10"], "error: --sizes: each between 50 and 15,100"),
    (["demo", "--kinds", "tree"], "error: --kinds takes classifier and/or lora"),
    (["demo", "--contracts", "nope"], "error: --contracts takes ticket-triage"),
    (["distill", "run", "x", "--prompt", "long"], "error: --prompt must be input, bare or contract"),
])
def test_bad_bench_and_demo_options_are_one_line_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and result.stderr.startswith(message) and "Traceback" not in result.output
