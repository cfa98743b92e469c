"""Semantic cache hits on classification contracts: served only when enough cached neighbours agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend, FakeReply
from smallfleet.cache.store import AnswerCache, Entry
from smallfleet.contracts.spec import ContractSpec
from smallfleet.embeddings import SharedEncoder
from smallfleet.fleet import Fleet
from smallfleet.guard.egress import Guard, GuardSettings
from smallfleet.route.caching import agreeing
from smallfleet.route.router import Contract, Router
from tests.cache.test_cache import Clock, ask
from tests.guard.test_egress import SmallDetector
from tests.kb.test_store_retrieve import WordHashEmbedder

TRIAGE = {"name": "triage", "output": {"choice": ["billing", "tech"]},
          "cache": {"ttl_s": 60, "semantic": 0.6, "agree": 2},
          "ladder": [{"model": "small", "accept": {"min_mean_logprob": -0.5}}]}


def setup(tmp_path: Path, spec: dict = TRIAGE) -> tuple[Router, FakeBackend, WordHashEmbedder]:
    small = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
    guard = Guard(GuardSettings("allow"), tmp_path / "audit.db", detector_factory=SmallDetector)  # type: ignore[arg-type]
    embedder = WordHashEmbedder()
    fleet = Fleet.of_backends([small], guard=guard, encoder=SharedEncoder(lambda: embedder))  # type: ignore[arg-type]
    contract = Contract.load(ContractSpec.model_validate(spec))
    router = Router(fleet, {contract.spec.name: contract})
    router.cache = AnswerCache(tmp_path / "cache.db", max_entries=100, clock=Clock())
    return router, small, embedder


def answer(small: FakeBackend, *labels: str) -> None:
    small.enqueue([FakeReply(label, logprob=-0.1) for label in labels])


def test_a_near_request_is_served_when_its_cached_neighbours_agree(tmp_path: Path) -> None:
    router, small, embedder = setup(tmp_path)
    answer(small, "billing", "billing")
    assert ask(router, "i was charged twice on my card").cached == "miss"
    assert ask(router, "i was charged twice on my visa card").cached == "miss"
    near = ask(router, "i was charged twice on my card today")
    assert near.cached == "semantic" and near.outcome is not None and near.outcome.content == "billing"
    assert len(small.history) == 2 and embedder.calls == 3  # one embedding per request, no model call
    stats = router.cache.stats()["contracts"]["triage"]  # type: ignore[union-attr,index]
    assert stats["hit_semantic"] == 1


def test_neighbours_that_disagree_send_the_request_to_the_model(tmp_path: Path) -> None:
    router, small, _ = setup(tmp_path)
    answer(small, "billing", "tech", "tech")
    ask(router, "my card payment failed twice")
    ask(router, "my card reader failed twice")
    near = ask(router, "my card failed twice")
    assert near.cached == "miss" and near.outcome.content == "tech" and len(small.history) == 3  # type: ignore[union-attr]
    assert router.cache.stats()["contracts"]["triage"]["rejected_near_hit"] == 1  # type: ignore[union-attr,index]


def test_one_neighbour_is_not_enough_when_two_must_agree(tmp_path: Path) -> None:
    router, small, _ = setup(tmp_path)
    answer(small, "billing", "tech")
    ask(router, "i was charged twice on my card")
    near = ask(router, "i was charged twice on my card today")
    assert near.cached == "miss" and len(small.history) == 2


def test_near_hits_never_cross_tenants(tmp_path: Path) -> None:
    router, small, _ = setup(tmp_path)
    answer(small, "billing", "billing", "tech")
    ask(router, "i was charged twice on my card", tenant="acme")
    ask(router, "i was charged twice on my visa card", tenant="acme")
    other = ask(router, "i was charged twice on my card today", tenant="globex")
    assert other.cached == "miss" and other.outcome.content == "tech"  # type: ignore[union-attr]


def test_agreeing_compares_the_answers_of_exactly_agree_neighbours() -> None:
    def entry(content: str) -> tuple[Entry, float]:
        return Entry(content, "", "c", "v", content, {"content": content, "tool_calls": []}, None), 0.9

    assert agreeing([entry("a"), entry("a")], 2) is not None
    assert agreeing([entry("a"), entry("b")], 2) is None
    assert agreeing([entry("a")], 2) is None
    assert agreeing([entry("a"), entry("a"), entry("b")], 2) is not None  # only the nearest two count


def test_semantic_matching_needs_a_contract_whose_answer_can_be_verified() -> None:
    ContractSpec.model_validate(TRIAGE)
    enums = {**TRIAGE, "output": {"json_schema": {"type": "object", "properties": {"c": {"enum": ["x", "y"]}},
                                                  "required": ["c"], "additionalProperties": False}}}
    ContractSpec.model_validate(enums)
    with pytest.raises(ValidationError, match="picks from options"):
        ContractSpec.model_validate({**TRIAGE, "output": {}})
    with pytest.raises(ValidationError, match="picks from options"):
        ContractSpec.model_validate({**TRIAGE, "output": {"json_schema": {"type": "object"}}})


def test_a_sensitive_request_is_neither_embedded_nor_served_a_near_hit(tmp_path: Path) -> None:
    router, small, embedder = setup(tmp_path)
    answer(small, "billing", "billing", "tech")
    ask(router, "i was charged twice on my card")
    ask(router, "i was charged twice on my visa card")
    calls = embedder.calls
    sensitive = ask(router, "i was charged twice on my card, mail me at jo@example.com")
    assert sensitive.cached == "sensitive" and sensitive.outcome.content == "tech"  # type: ignore[union-attr]
    assert embedder.calls == calls  # never embedded, never compared


def test_an_exact_hit_needs_no_embedding(tmp_path: Path) -> None:
    router, small, embedder = setup(tmp_path)
    answer(small, "billing")
    ask(router, "i was charged twice on my card")
    calls = embedder.calls
    assert ask(router, "i was charged twice on my card").cached == "exact" and embedder.calls == calls


def test_an_encoder_that_fails_makes_a_miss_not_a_failed_request(tmp_path: Path) -> None:
    router, small, _ = setup(tmp_path)

    class Broken:
        def encode(self, texts: list[str], batch_size: int = 64) -> None:
            raise RuntimeError("no sentence-transformers here")

    router.fleet.encoder = SharedEncoder(Broken)  # type: ignore[arg-type]
    answer(small, "billing", "billing")
    first = ask(router, "i was charged twice on my card")
    assert first.cached == "miss" and first.outcome.content == "billing"  # type: ignore[union-attr]
    again = ask(router, "i was charged twice on my card")  # kept without an embedding: exact hits still work
    assert again.cached == "exact"


def test_agree_is_refused_where_it_would_mean_nothing() -> None:
    grounded = {"name": "faq", "grounding": {"knowledge_base": "help"}, "cache": {"semantic": 0.9, "agree": 3},
                "ladder": ["small"]}
    with pytest.raises(ValidationError, match="cache.agree"):
        ContractSpec.model_validate(grounded)
