"""Workflows: steps that are contracts, tools and model calls; data passed along; branching; one traced run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend
from smallfleet.cli.main import app
from smallfleet.config.fleet import load_fleet
from smallfleet.contracts.spec import ContractSpec
from smallfleet.errors import ConfigError
from smallfleet.fleet import Fleet
from smallfleet.route.router import Contract, Router
from smallfleet.trace.record import Trace
from smallfleet.workflows.run import WorkflowRunner
from smallfleet.workflows.spec import WorkflowSpec

CUSTOMERS = {"ada@example.org": {"name": "Ada", "plan": "pro", "orders": ["A-17"]}}


def lookup_customer(email: str) -> dict:
    return CUSTOMERS.get(email, {"name": None, "plan": None, "orders": []})


def broken_tool(**_: object) -> None:
    raise RuntimeError("the CRM is down")


FLOW = {
    "name": "support",
    "steps": [
        {"id": "triage", "contract": "triage", "input": "{input}"},
        {"id": "customer", "tool": "tests.workflows.test_workflow:lookup_customer", "args": {"email": "{triage.email}"}},
        {"id": "offer", "when": {"customer.plan": ["pro", "enterprise"]}, "model": "small",
         "prompt": "Offer {customer.name} a discount? Orders: {customer.orders}", "output": {"choice": ["yes", "no"]}},
        {"id": "escalate", "when": {"triage.category": "outage"}, "model": "small", "prompt": "page on-call"},
    ],
    "output": '{"name": "{customer.name}", "offer": "{offer}"}',
}


def _runner(tmp_path: Path) -> tuple[WorkflowRunner, FakeBackend, list[Trace]]:
    fake = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
    fleet = Fleet.of_backends([fake])
    spec = ContractSpec(name="triage", quality_target=0.5, ladder=[{"model": "small"}], output={"json_schema": {
        "type": "object", "properties": {"category": {"type": "string"}, "email": {"type": "string"}},
        "required": ["category", "email"]}})
    traces: list[Trace] = []

    async def record(trace: Trace) -> None:
        traces.append(trace)

    return WorkflowRunner(Router(fleet, {"triage": Contract.load(spec)}), record), fake, traces


def test_a_run_passes_data_along_branches_and_traces_every_hop(tmp_path: Path) -> None:
    runner, fake, traces = _runner(tmp_path)
    fake.enqueue(['{"category": "billing", "email": "ada@example.org"}', "yes"])
    result = asyncio.run(runner.run(WorkflowSpec.model_validate(FLOW), "I was charged twice - ada@example.org"))
    assert result.status == "ok" and result.output == {"name": "Ada", "offer": "yes"}
    assert [(h.step, h.kind, h.status) for h in result.hops] == [
        ("triage", "contract", "ok"), ("customer", "tool", "ok"), ("offer", "model", "ok"),
        ("escalate", "model", "skipped")]
    assert fake.history[1].messages[-1].content == 'Offer Ada a discount? Orders: ["A-17"]'
    assert fake.history[1].constraint.kind == "choice"
    assert [t.step for t in traces] == ["triage", "customer", "offer"]
    assert {t.run_id for t in traces} == {result.run_id} and all(t.endpoint == "workflow" for t in traces)
    assert result.hops[0].rung == 0 and result.hops[0].model == "small"
    breakdown = result.breakdown_ms()
    assert set(breakdown) == {"prompt_ms", "decode_ms", "mask_ms", "tool_ms", "other_ms"}


def test_a_failing_hop_ends_the_run_with_its_error(tmp_path: Path) -> None:
    runner, fake, traces = _runner(tmp_path)
    flow = {**FLOW, "steps": [FLOW["steps"][0], {"id": "customer", "tool": "tests.workflows.test_workflow:broken_tool"},
                              FLOW["steps"][2]], "output": None}
    fake.enqueue(['{"category": "billing", "email": "x@y.z"}'])
    result = asyncio.run(runner.run(WorkflowSpec.model_validate(flow), "hello"))
    assert result.status == "error" and "the CRM is down" in result.error and "customer" in result.error
    assert [h.status for h in result.hops] == ["ok", "error"] and len(fake.history) == 1
    assert traces[-1].status == "error" and traces[-1].step == "customer"


def test_a_template_reading_a_missing_field_is_a_clear_error(tmp_path: Path) -> None:
    runner, fake, _ = _runner(tmp_path)
    fake.enqueue(['{"category": "billing", "email": "x@y.z"}'])
    flow = {"name": "f", "steps": [FLOW["steps"][0], {"id": "m", "model": "small", "prompt": "{triage.urgency}"}]}
    result = asyncio.run(runner.run(WorkflowSpec.model_validate(flow), "hi"))
    assert result.status == "error" and "triage.urgency: not in the output of 'triage'" in result.error


@pytest.mark.parametrize("flow, message", [
    ({"name": "f", "steps": [{"id": "a", "model": "m", "prompt": "{b}"}, {"id": "b", "model": "m"}]},
     "step 'a' reads 'b', which is not an earlier step"),
    ({"name": "f", "steps": [{"id": "a", "model": "m", "tool": "x:y"}]}, "exactly one of contract, tool or model"),
    ({"name": "f", "steps": [{"id": "a", "tool": "nocolon"}]}, "tool must be 'module:function'"),
    ({"name": "f", "steps": [{"id": "a", "model": "m"}, {"id": "a", "model": "m"}]}, "repeated or reserved"),
    ({"name": "f", "steps": [{"id": "a", "model": "m", "when": {"zz.x": 1}}]}, "reads 'zz'"),
])
def test_mistakes_in_a_workflow_are_caught_when_it_is_loaded(flow: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WorkflowSpec.model_validate(flow)


FLEET = """
models: [{kind: fake, id: small}]
contracts:
  - {name: echo, quality_target: 0.5, ladder: [small]}
workflows:
  - name: twice
    steps:
      - {id: first, contract: echo, input: "{input}"}
      - {id: second, model: small, prompt: "again: {first}"}
"""


def test_the_cli_runs_a_workflow_and_shows_its_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fleet.yaml").write_text(FLEET)
    monkeypatch.setenv("SMALLFLEET_HOME", str(tmp_path))
    monkeypatch.setenv("SMALLFLEET_CONFIG", str(tmp_path / "fleet.yaml"))
    runner = CliRunner()
    ran = runner.invoke(app, ["run", "twice", "hello", "--json"])
    assert ran.exit_code == 0, ran.output
    result = json.loads(ran.stdout)
    assert result["status"] == "ok" and result["output"] == "again: hello" and len(result["hops"]) == 2
    tree = runner.invoke(app, ["traces", "show", result["run_id"][:16]])
    assert tree.exit_code == 0 and tree.output.startswith(f"run {result['run_id']}  2 hops")
    assert "├─ first" in tree.output and "contract echo  rung 0 small" in tree.output
    assert "└─ second" in tree.output and "model small" in tree.output
    missing = runner.invoke(app, ["run", "nope", "x"])
    assert missing.exit_code == 1 and "no workflow 'nope'" in missing.output and missing.output.count("\n") == 1


def test_a_fleet_file_naming_a_missing_contract_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET.replace("contract: echo", "contract: nope"))
    with pytest.raises(ConfigError, match=r"workflows\[0\].steps\[0\].contract: 'nope' is not one of the contracts"):
        load_fleet(path)


def test_the_benchmark_workflow_is_twenty_valid_hops_with_a_branch() -> None:
    from smallfleet.evals.workflow_bench import support_workflow

    for layout in ("shared-prefix", "question-first"):
        spec = WorkflowSpec.model_validate(support_workflow("smollm2-135m", layout))
        assert len(spec.steps) == 20 and {s.kind for s in spec.steps} == {"contract", "tool", "model"}
        assert [s.id for s in spec.steps if s.when] == ["team"]
        prompts = [s.prompt for s in spec.steps if s.kind == "model"]
        assert all(p.startswith("Ticket: {input}") == (layout == "shared-prefix") for p in prompts)


def today() -> object:
    import datetime

    return {"day": datetime.date(2026, 11, 25), "tags": {"a"}}


async def later(name: str) -> dict:
    return {"hello": name}


def test_odd_values_never_lose_the_run(tmp_path: Path) -> None:
    """A tool returning a date or a set, an async tool, a value with quotes inside a JSON output template, a choice
    answer that looks like a number, a `when` through a skipped step: the run ends with a result, not a crash."""
    runner, fake, traces = _runner(tmp_path)
    fake.enqueue(["1", 'say "hi"\nbye'])
    flow = {"name": "odd", "steps": [
        {"id": "day", "tool": "tests.workflows.test_workflow:today"},
        {"id": "greet", "tool": "tests.workflows.test_workflow:later", "args": {"name": "{day.day}"}},
        {"id": "pick", "model": "small", "prompt": "pick", "output": {"choice": ["1", "2"]}},
        {"id": "never", "when": {"pick": "2"}, "model": "small", "prompt": "x"},
        {"id": "after", "when": {"never.name": "x"}, "model": "small", "prompt": "y"},
        {"id": "quote", "when": {"pick": ["1"]}, "model": "small", "prompt": "z"},
    ], "output": '{"day": "{day.day}", "greet": {greet}, "pick": "{pick}", "quote": "{quote}", "never": {never}}'}
    result = asyncio.run(runner.run(WorkflowSpec.model_validate(flow), "go"))
    assert result.status == "ok", result.error
    assert [h.status for h in result.hops] == ["ok", "ok", "ok", "skipped", "skipped", "ok"]
    assert result.output == {"day": "2026-11-25", "greet": {"hello": "2026-11-25"}, "pick": "1",
                             "quote": 'say "hi"\nbye', "never": None}
    assert traces[0].output.startswith('{"day":"2026-11-25"')


def test_an_output_template_that_is_not_json_once_rendered_is_an_error_with_the_run_kept(tmp_path: Path) -> None:
    runner, fake, _ = _runner(tmp_path)
    fake.enqueue(["x"])
    flow = {"name": "f", "steps": [{"id": "a", "model": "small", "prompt": "p"}], "output": '{"a": {a}}'}
    result = asyncio.run(runner.run(WorkflowSpec.model_validate(flow), "go"))
    assert result.status == "error" and "not valid JSON once rendered" in result.error and result.hops[0].status == "ok"


@pytest.mark.parametrize("flow, message", [
    ({"name": "f", "steps": [{"id": "a", "tool": "m:f", "args": {"x": {"y": ["{nosuch}"]}}}]}, "reads 'nosuch'"),
    ({"name": "f", "steps": [{"id": "a", "model": "m", "when": {"a b": 1}}]}, "is not a path"),
])
def test_nested_arguments_and_when_paths_are_checked_at_load(flow: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WorkflowSpec.model_validate(flow)


def test_the_benchmark_routes_the_triage_contracts_to_specialists_when_asked() -> None:
    from smallfleet.evals.workflow_bench import _contracts

    plain = _contracts("smollm2-135m")
    routed = _contracts("smollm2-135m", {"ticket-category": "ticket-category-classifier"})
    assert [r.model for r in plain["ticket-category"].spec.ladder] == ["smollm2-135m"]
    assert [r.model for r in routed["ticket-category"].spec.ladder] == ["ticket-category-classifier"]
    assert [r.model for r in routed["next-action"].spec.ladder] == ["smollm2-135m"]


REAL = """
models: [{kind: llamacpp, id: smollm2-135m}]
contracts:
  - {name: mood, quality_target: 0.5, max_tokens: 4, output: {choice: [happy, angry]}, ladder: [smollm2-135m]}
workflows:
  - name: triage
    steps:
      - {id: mood, contract: mood, input: "{input}"}
      - {id: customer, tool: "smallfleet.workload.support:lookup_customer", args: {text: "{input}"}}
      - id: tags
        model: smollm2-135m
        prompt: "Ticket: {input}\\n\\nTags?"
        instructions: false
        max_tokens: 24
        output: {json_schema: {type: object, properties: {tags: {type: array, items: {enum: [refund, bug]},
                 maxItems: 1}}, required: [tags], additionalProperties: false}}
    output: '{"mood": "{mood}", "plan": "{customer.plan}", "tags": {tags.tags}}'
"""


@pytest.mark.model
def test_a_workflow_on_the_real_embedded_model(tmp_path: Path) -> None:
    """Contract, tool and constrained model hops on SmolLM2 itself: valid answers, one traced run, a time split."""
    from smallfleet.config.settings import Settings
    from smallfleet.runtime import open_runtime

    (tmp_path / "fleet.yaml").write_text(REAL)
    settings = Settings(home=tmp_path, config_path=tmp_path / "fleet.yaml")
    with open_runtime(settings) as runtime:
        result = runtime.run_workflow("triage", "I was charged twice and I am furious!")
        hops = runtime.store.run(result.run_id)
    assert result.status == "ok", result.error
    assert result.output["mood"] in ("happy", "angry") and result.output["plan"] in ("basic", "pro", "enterprise")
    assert set(result.output["tags"]) <= {"refund", "bug"}
    assert [h.step for h in hops] == ["mood", "customer", "tags"] and all(h.status == "ok" for h in hops)
    assert result.hops[0].rung == 0 and result.hops[2].completion_tokens > 0 and result.breakdown_ms()["decode_ms"] > 0
