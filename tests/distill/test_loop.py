"""`distill run` end to end on the tiny workload: train, gate, register, promote, serve, roll back."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from smallfleet.cli.main import app
from smallfleet.config.settings import Settings
from smallfleet.distill.loop import DistillOptions, run_distill
from smallfleet.route.thresholds import ThresholdStore
from smallfleet.runtime import open_runtime
from smallfleet.specialists.registry import SpecialistRegistry
from tests.distill.conftest import intent_items, seed


def test_distill_run_promotes_a_gated_specialist_that_then_answers_locally(settings: Settings) -> None:
    seed(settings, intent_items(240), labelled_every=4)
    result = run_distill(settings, "intent")
    assert result["version"] == "v1" and result["promoted"] is True and result["gate"]["passed"] is True
    metrics = result["metrics"]
    assert metrics["zero_shot_base"]["exact_match"] == 0.0  # the fake first rung echoes: never a valid choice
    assert metrics["candidate"]["exact_match"] >= 0.9 and metrics["candidate"]["test_local_share"] > 0.5
    assert (metrics["candidate"]["test_accepted_agreement"] or 0) >= 0.9
    rules = ThresholdStore(settings.home).load("intent")
    assert set(rules) == {"intent-specialist@v1"}  # calibrated under the version's own id
    card = SpecialistRegistry(settings.home).card("intent", "v1")
    assert card.dataset["test"] == result["dataset"]["kept"]["test"] and card.gate["passed"]
    with open_runtime(settings) as runtime:
        assert [r.model for r in runtime.router.contract("intent").spec.ladder] == [
            "intent-specialist@v1", "small", "teacher"]
        routed = runtime.run("intent", "Hi, my parcel is late again, please help")
        assert routed.model == "intent-specialist@v1" and routed.outcome.content == "shipping" and routed.local


def test_a_candidate_that_does_not_beat_the_promoted_version_is_kept_but_not_promoted(settings: Settings) -> None:
    seed(settings, intent_items(240))
    assert run_distill(settings, "intent", DistillOptions(base=False))["promoted"]
    again = run_distill(settings, "intent", DistillOptions(base=False))
    assert again["version"] == "v2" and again["promoted"] is False and not again["gate"]["passed"]
    assert "does not beat intent-specialist@v1" in again["gate"]["reasons"][0]
    registry = SpecialistRegistry(settings.home)
    assert registry.state("intent")["promoted"] == "v1" and not registry.card("intent", "v2").gate["passed"]


def test_too_few_examples_trains_nothing_and_says_so(settings: Settings) -> None:
    seed(settings, intent_items(20))
    result = run_distill(settings, "intent")
    assert result["version"] is None and not result["promoted"] and "nothing trained" in result["gate"]["reasons"][0]
    assert SpecialistRegistry(settings.home).versions("intent") == []


def test_cli_distill_and_specialists_commands(settings: Settings) -> None:
    seed(settings, intent_items(240))
    runner = CliRunner()
    data = runner.invoke(app, ["distill", "dataset", "intent", "--json"])
    assert data.exit_code == 0, data.output
    assert json.loads(data.stdout)["kept"]["train"] > 100
    run = runner.invoke(app, ["distill", "run", "intent", "--no-base", "--json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["promoted"] is True
    listing = runner.invoke(app, ["specialists", "list"])
    assert "* intent-specialist@v1" in listing.stdout and "gate passed" in listing.stdout
    back = runner.invoke(app, ["specialists", "rollback", "intent", "--reason", "test"])
    assert back.exit_code == 0 and "fleet file ladder" in back.stdout
    with open_runtime(settings) as runtime:
        assert [r.model for r in runtime.router.contract("intent").spec.ladder] == ["small", "teacher"]
    again = runner.invoke(app, ["specialists", "promote", "intent", "v1"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["promoted"] == "v1"
    missing = runner.invoke(app, ["specialists", "promote", "intent", "v9"])
    assert missing.exit_code == 1 and missing.stderr.startswith("error: contract 'intent' has no specialist 'v9'")
    unknown = runner.invoke(app, ["distill", "run", "nope"])
    assert unknown.exit_code == 1 and "no contract named 'nope'" in unknown.stderr
    trained = runner.invoke(app, ["distill", "train", "intent", "--kinds", "classifier", "--json"])
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.stdout)["version"] == "v2" and json.loads(trained.stdout)["promoted"] is False
    assert SpecialistRegistry(settings.home).state("intent")["promoted"] == "v1"  # train never promotes
    remote = runner.invoke(app, ["distill", "train", "intent", "--base-model", "teacher"])
    assert remote.exit_code == 1 and "not a local model of the fleet" in remote.stderr


def test_distill_eval_scores_every_version_on_the_frozen_test(settings: Settings) -> None:
    seed(settings, intent_items(240))
    run_distill(settings, "intent", DistillOptions(base=False))
    out = CliRunner().invoke(app, ["distill", "eval", "intent", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert set(data["results"]) == {"zero_shot_base", "v1"} and data["results"]["v1"]["promoted"] is True
    assert data["results"]["v1"]["n"] == data["test_items"] and data["results"]["zero_shot_base"]["exact_match"] == 0


def test_each_output_kind_gets_the_specialists_that_can_serve_it() -> None:
    from smallfleet.config.fleet import FleetConfig
    from smallfleet.contracts.spec import ContractSpec
    from smallfleet.distill.loop import candidate_kinds
    from smallfleet.route.router import Contract
    from smallfleet.workload.agent_tools import agent_contract_output

    config = FleetConfig.model_validate({"models": [{"id": "small", "kind": "llamacpp", "path": "/nowhere.gguf"},
                                                    {"id": "teacher", "kind": "fake", "location": "remote"}]})
    outputs = {"choice": {"choice": ["a", "b"]}, "tools": agent_contract_output("auto"), "regex": {"regex": "[0-9]+"},
               "object": {"json_schema": {"type": "object", "properties": {"x": {"type": "string"}}}}}
    kinds = {}
    for name, output in outputs.items():
        spec = ContractSpec(name=name, output=output, ladder=["small", "teacher"])
        kinds[name] = candidate_kinds(config, spec, Contract.load(spec), DistillOptions(kinds=("classifier", "lora")))
    assert kinds == {"choice": ["classifier", "lora"], "tools": ["lora"], "regex": ["lora"], "object": ["lora"]}
