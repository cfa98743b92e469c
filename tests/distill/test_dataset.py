"""The dataset: references (labels win), validity, duplicates, deterministic split, frozen test, exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smallfleet.contracts.spec import ContractSpec
from smallfleet.distill.dataset import FrozenTest, build_dataset, export, normalise
from smallfleet.errors import SmallfleetError
from smallfleet.route.router import Contract
from tests.distill.conftest import INTENTS, intent_items, routed_trace


def intent_contract() -> Contract:
    return Contract.load(ContractSpec.model_validate({"name": "intent", "instructions": "Classify.",
                                                      "output": {"choice": list(INTENTS)},
                                                      "ladder": ["small", "teacher"]}))


def test_label_wins_and_invalid_or_missing_references_are_dropped_with_reasons() -> None:
    labelled = routed_trace("I was charged twice", "shipping")
    teacher_only = routed_trace("my parcel is late", "shipping")
    invalid = routed_trace("reset my password", "passwords")  # not one of the choices
    no_top = routed_trace("hello", "login", top_valid=False)
    data = build_dataset(intent_contract(), [labelled, teacher_only, invalid, no_top],
                         {labelled.id: "billing"}, dev=0.0, test=0.0)
    assert {e.input: (e.reference, e.source) for e in data.train} == {
        "I was charged twice": ("billing", "label"), "my parcel is late": ("shipping", "top_rung")}
    assert data.dropped == {"reference fails the contract": 1,
                            "no reference (no label and no valid top-rung answer)": 1}
    assert data.sources == {"label": 1, "top_rung": 1} and data.balance == {"answer": {"billing": 1, "shipping": 1}}


def test_exact_and_near_duplicates_are_removed_keeping_the_labelled_copy() -> None:
    a = routed_trace("My card was billed twice for the same order, please refund", "shipping", created_at=3)
    b = routed_trace("my card was billed twice for the same order please refund!!", "billing", created_at=1)
    near = routed_trace("My card was billed twice for the same order, please refund now", "billing", created_at=2)
    other = routed_trace("where is my parcel", "shipping", created_at=4)
    data = build_dataset(intent_contract(), [a, b, near, other], {b.id: "billing"}, dev=0.0, test=0.0)
    assert [e.id for e in data.train] == [b.id, other.id]  # the labelled copy of the duplicate is kept
    assert data.dropped == {"duplicate input": 1, "near-duplicate input": 1}


def test_the_split_is_deterministic_and_keyed_by_the_input() -> None:
    items = intent_items(300)
    traces = [routed_trace(t, label) for t, label in items]
    one = build_dataset(intent_contract(), traces, {}, dev=0.2, test=0.2)
    two = build_dataset(intent_contract(), list(reversed(traces)), {}, dev=0.2, test=0.2)
    assert [e.id for e in one.test] == [e.id for e in two.test] and one.hash == two.hash
    assert 40 <= len(one.test) <= 80 and 40 <= len(one.dev) <= 80 and len(one.train) + len(one.dev) + len(one.test) == 300


def test_the_test_split_is_frozen_across_builds_and_tampering_is_refused(tmp_path: Path) -> None:
    frozen = FrozenTest(tmp_path / "intent")
    first_traffic = [routed_trace(t, label) for t, label in intent_items(200)]
    first = build_dataset(intent_contract(), first_traffic, {}, frozen=frozen)
    assert frozen.path.is_file() and first.test_frozen_at
    later_traffic = [routed_trace(t, label) for t, label in intent_items(400, seed=1)]
    resent = [routed_trace(e.input, e.reference) for e in first.test[:5]]  # the same questions asked again
    second = build_dataset(intent_contract(), first_traffic + later_traffic + resent, {}, frozen=frozen)
    assert [e.id for e in second.test] == [e.id for e in first.test]
    assert second.test_frozen_at == first.test_frozen_at
    test_inputs = {normalise(e.input) for e in second.test}
    assert not test_inputs & {normalise(e.input) for e in (*second.train, *second.dev)}
    assert second.dropped.get("in the frozen test split", 0) >= 5  # the resent ones (and any repeat in the traffic)
    total = sum(len(x) for x in (second.train, second.dev, second.test)) + sum(second.dropped.values())
    assert total == 200 + 400 + 5 + 0 and len(second.test) == len(first.test)
    frozen.path.write_text(frozen.path.read_text().replace("billing", "login", 1))
    with pytest.raises(SmallfleetError, match="does not match its hash"):
        build_dataset(intent_contract(), first_traffic, {}, frozen=frozen)


def test_export_writes_the_splits_and_openai_fine_tuning_rows(tmp_path: Path) -> None:
    traces = [routed_trace(t, label) for t, label in intent_items(60)]
    contract = intent_contract()
    data = build_dataset(contract, traces, {})
    files = export(data, contract, tmp_path / "ds")
    rows = [json.loads(line) for line in Path(files["train_openai"]).read_text().splitlines()]
    assert len(rows) == len(data.train)
    first = rows[0]["messages"]
    assert first[0] == {"role": "system", "content": "Classify."}
    assert first[-2] == {"role": "user", "content": data.train[0].input}
    assert first[-1] == {"role": "assistant", "content": data.train[0].reference}
    manifest = json.loads(Path(files["manifest"]).read_text())
    assert manifest["hash"] == data.hash and manifest["kept"]["test"] == len(data.test)


def test_tool_call_references_are_checked_and_exported_as_calls() -> None:
    spec = ContractSpec.model_validate({"name": "agent", "output": {"tools": [
        {"name": "refund", "parameters": {"type": "object", "properties": {"order": {"type": "string"}},
                                          "required": ["order"]}}]}, "ladder": ["small", "teacher"]})
    contract = Contract.load(spec)
    call = routed_trace("refund order 7", json.dumps([{"name": "refund", "arguments": {"order": "7"}}]), "agent")
    text = routed_trace("hello there", "Hello! How can I help?", "agent")
    bad = routed_trace("refund it", json.dumps([{"name": "refund", "arguments": {"id": 7}}]), "agent")
    data = build_dataset(contract, [call, text, bad], {}, dev=0.0, test=0.0)
    assert len(data.train) == 2 and data.dropped == {"reference fails the contract": 1}
    assert data.balance == {"tools": {"refund": 1, "no_call": 1}}
    from smallfleet.distill.dataset import openai_row

    row = openai_row(contract, next(e for e in data.train if e.id == call.id))
    assert row["messages"][-1]["tool_calls"][0]["function"] == {"name": "refund", "arguments": '{"order": "7"}'}
    assert row["tools"][0]["function"]["name"] == "refund"


def test_a_small_dataset_keeps_enough_dev_examples_to_certify_a_rule() -> None:
    traces = [routed_trace(t, label) for t, label in intent_items(120)]
    small = build_dataset(intent_contract(), traces, {}, dev=0.15, test=0.15)
    assert len(small.dev) == 36  # raised from 15% (18) to 40, capped at 30% of 120
    big = build_dataset(intent_contract(), [routed_trace(t, label) for t, label in intent_items(1000)], {},
                        dev=0.15, test=0.15)
    assert len(big.dev) == 150  # 15% once that is enough
