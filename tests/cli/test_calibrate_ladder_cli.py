"""`smallfleet calibrate` over a three-rung ladder of fakes, and `smallfleet demo --ladder` model resolution."""

from __future__ import annotations

import json
import math
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smallfleet.cli.main import app
from smallfleet.models.errors import ModelNotInstalled
from smallfleet.route.calibrate import in_holdout
from smallfleet.runtime import open_runtime

FLEET = """
models:
  - {id: small, kind: fake}
  - {id: mid, kind: fake}
  - {id: big, kind: fake, location: remote, price_per_1k_output: 1.0}
contracts:
  - name: echo
    output: {choice: ["yes", "no"]}
    ladder: [small, mid, big]
"""


@pytest.fixture
def fleet_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    monkeypatch.setenv("SMALLFLEET_CONFIG", str(path))
    monkeypatch.setenv("SMALLFLEET_HOME", str(tmp_path / "home"))
    return path


def shadow_runs(n: int) -> list[str]:
    ids = []
    with open_runtime() as runtime:
        for _ in range(n):  # the fakes echo the input: every rung answers "yes"
            result, trace = runtime.call(runtime.arun("echo", "yes", shadow=True))
            assert result.rung == 0 and len(trace.attempts) == 3
            ids.append(trace.id)
    return ids


def test_calibrate_fits_and_saves_every_rung_but_the_top(fleet_file: Path) -> None:
    shadow_runs(12)
    runner = CliRunner()
    out = runner.invoke(app, ["calibrate", "echo", "--holdout", "0", "--min-accepted", "2", "--target", "0.8",
                              "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert [(r["rung"], r["model"], r["samples"], r["installed"]) for r in data["rungs"]] == [
        (0, "small", 12, True), (1, "mid", 12, True)]
    saved = json.loads(Path(data["saved_to"]).read_text())
    assert set(saved["models"]) == {"small", "mid"} and saved["report"]["rungs"][1]["model"] == "mid"
    shown = runner.invoke(app, ["calibrate", "echo", "--holdout", "0", "--min-accepted", "2", "--target", "0.8"])
    assert shown.exit_code == 0, shown.output
    for text in ("rung 0 (small): 12 training samples", "rung 1 (mid): 12 training samples", "local share",
                 "chosen: ", "installed: no held-out check", "top rung (big): accepted as is", "saved to"):
        assert text in shown.stdout, text


def test_a_rung_that_fails_its_held_out_check_is_not_installed(fleet_file: Path) -> None:
    ids = shadow_runs(30)
    held = [i for i in ids if in_holdout(i, 0.5)]
    assert held and len(held) < 26
    with open_runtime() as runtime:  # reviewers say every held-out answer was wrong
        for i in held:
            runtime.store.add_label(i, "no", source="review")
    runner = CliRunner()
    out = runner.invoke(app, ["calibrate", "echo", "--holdout", "0.5", "--min-accepted", "2", "--target", "0.8",
                              "--json"])
    assert out.exit_code == 0, out.output
    rungs = json.loads(out.stdout)["rungs"]
    for r in rungs:
        assert r["signal"] is not None and r["train"]["agreement"] == 1.0  # it held on the training part
        assert r["installed"] is False and r["accept_rule"] == "always escalate"
        assert r["holdout_samples"] == len(held)
        assert r["why"].startswith(f"held-out agreement 0.000 (0/{len(held)} accepted) < target 0.8")
    shown = runner.invoke(app, ["calibrate", "echo", "--holdout", "0.5", "--min-accepted", "2", "--target", "0.8"])
    assert shown.stdout.count("NOT installed: held-out agreement 0.000") == 2
    with open_runtime() as runtime:
        rules = runtime.router.contracts["echo"].rules
        assert rules[0].min_mean_logprob == math.inf and rules[1].min_mean_logprob == math.inf
        assert runtime.run("echo", "yes").rung == 2  # both local rungs now escalate everything


def test_calibrate_without_references_is_a_one_line_error(fleet_file: Path) -> None:
    with open_runtime() as runtime:
        runtime.run("echo", "yes")  # rung 0 accepts, nothing above runs, no label: no reference
    out = CliRunner().invoke(app, ["calibrate", "echo"])
    assert out.exit_code == 1 and out.stderr.startswith("error: no traces of 'echo' carry an answer")


def test_demo_ladder_resolves_local_models_through_the_model_store(fleet_file: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    asked = []

    class FakeStore:
        def __init__(self, home: Path) -> None:
            self.home = home

        def path_of(self, name: str) -> Path:
            asked.append((self.home, name))
            if name == "missing":
                raise ModelNotInstalled(f"model {name!r} is not installed: run `smallfleet models pull {name}`")
            return self.home / "models" / f"{name}.gguf"

    module = types.ModuleType("smallfleet.models.store")
    module.ModelStore = FakeStore  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "smallfleet.models.store", module)
    import smallfleet.evals.demo as demo

    seen = {}

    def fake_run_demo(*args, local_models=None, **kwargs):
        seen["models"] = local_models
        return {"contracts": {}}

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    runner = CliRunner()
    out = runner.invoke(app, ["demo", "--ladder", "smollm2-135m,qwen2.5-coder-0.5b-instruct", "--json"])
    assert out.exit_code == 0, out.output
    models = seen["models"]
    assert [m.id for m in models] == ["smollm2-135m", "qwen2.5-coder-0.5b-instruct"]
    assert models[0].path is None  # the embedded SmolLM2
    home = fleet_file.parent / "home"
    assert models[1].path == home / "models" / "qwen2.5-coder-0.5b-instruct.gguf"
    assert asked == [(home, "qwen2.5-coder-0.5b-instruct")]
    out = runner.invoke(app, ["demo", "--json"])
    assert out.exit_code == 0 and [m.id for m in seen["models"]] == ["smollm2-135m"]
    missing = runner.invoke(app, ["demo", "--ladder", "smollm2-135m,missing"])
    assert missing.exit_code == 1 and missing.stderr.startswith("error: model 'missing' is not installed")
    bad = runner.invoke(app, ["demo", "--ladder", "smollm2-135m,smollm2-135m"])
    assert bad.exit_code == 1 and bad.stderr.startswith("error: --ladder: model ids must be unique")
