"""The embedding classifier specialist: which outputs it can take, training, serving as a router rung."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest

from smallfleet.backends.base import ModelInfo, SamplingParams
from smallfleet.backends.classifier import ClassifierBackend
from smallfleet.backends.fake import FakeBackend
from smallfleet.constrain.spec import ChoiceConstraint, JsonSchemaConstraint
from smallfleet.contracts.spec import ContractSpec
from smallfleet.distill.dataset import build_dataset
from smallfleet.distill.train_classifier import train_classifier
from smallfleet.embeddings import Encoder
from smallfleet.fleet import Fleet
from smallfleet.route.router import Contract, Router
from smallfleet.specialists.classifier import layout_of
from tests.distill.conftest import INTENTS, intent_items, routed_trace


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder()


def test_layouts_cover_choices_and_objects_of_enums_only() -> None:
    assert layout_of(ChoiceConstraint(("a", "b"))).fields == ("answer",)
    triage = {"type": "object", "properties": {"category": {"enum": ["x", "y"]}, "urgency": {"enum": [1, 2]}},
              "required": ["category", "urgency"], "additionalProperties": False}
    layout = layout_of(JsonSchemaConstraint(triage))
    assert layout.fields == ("category", "urgency")
    assert layout.parse('{"urgency": 2, "category": "y"}') == {"category": '"y"', "urgency": "2"}
    assert layout.parse('{"category": "z", "urgency": 2}') is None  # not an option
    assert json.loads(layout.render({"category": '"y"', "urgency": "2"})) == {"category": "y", "urgency": 2}
    free_text = {**triage, "properties": {**triage["properties"], "note": {"type": "string"}},
                 "required": ["category", "urgency", "note"]}
    optional = {**triage, "required": ["category"]}
    for schema in (free_text, optional, {"type": "string", "enum": ["a"]}):
        assert layout_of(JsonSchemaConstraint(schema)) is None


def test_trained_classifier_serves_valid_answers_with_class_probabilities(tmp_path: Path, encoder: Encoder) -> None:
    spec = ContractSpec.model_validate({"name": "intent", "output": {"choice": list(INTENTS)},
                                        "quality_target": 0.9,
                                        "ladder": [{"model": "clf", "accept": {"min_mean_logprob": math.log(0.5)}},
                                                   "teacher"]})
    contract = Contract.load(spec)
    data = build_dataset(contract, [routed_trace(t, label) for t, label in intent_items(150)], {})
    trained = train_classifier(data, layout_of(contract.constraint), tmp_path / "clf.pkl", encoder)
    assert trained.dev_exact >= 0.9 and trained.hyperparameters["train_examples"] == len(data.train)
    backend = ClassifierBackend(ModelInfo(id="clf", location="local", context_window=None), trained.path, encoder)
    gen = asyncio.run(backend.generate(contract.messages("I forgot my password and the reset link expired"),
                                       SamplingParams(), contract.constraint))
    assert gen.text == "login" and contract.check(gen).valid
    [token] = gen.logprobs
    assert token.token == "login" and math.exp(token.logprob) > 0.5 and token.top[1].token != "login"
    teacher = FakeBackend(info=ModelInfo(id="teacher", location="remote", context_window=None))
    router = Router(Fleet.of_backends([backend, teacher]), {"intent": contract})
    result = asyncio.run(router.run("intent", "my package never arrived, the courier lost it"))
    assert result.model == "clf" and result.outcome.content == "shipping" and result.local
    assert result.confidence is not None and result.confidence > 0.5 and teacher.history == []
    asyncio.run(backend.aclose())
