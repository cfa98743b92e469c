"""Quoted grounded answers: the grammar enumerates the passages' sentences, and the extractive rung picks one
with sentence embeddings (no language model)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from smallfleet.backends.base import ModelInfo
from smallfleet.backends.extractive import ExtractiveBackend
from smallfleet.backends.fake import FakeBackend, FakeReply
from smallfleet.config.fleet import FleetConfig
from smallfleet.constrain.spec import JsonSchemaConstraint
from smallfleet.contracts.spec import ContractSpec
from smallfleet.errors import InvalidRequest
from smallfleet.fleet import Fleet
from smallfleet.kb import grounded
from smallfleet.kb.library import Library
from smallfleet.kb.store import KnowledgeBase, kb_path
from smallfleet.route.router import Contract, Router
from tests.kb.test_grounded import accepts
from tests.kb.test_store_retrieve import WordHashEmbedder

PASSAGES = [grounded.Passage("c4", "Shipping > Costs", "Shipping is free for orders over fifty euros. Smaller orders "
                             "pay five euros.\nExpress delivery costs ten euros extra."),
            grounded.Passage("c9", "Returns", "Use the returns form within thirty days of delivery.")]


def test_sentences_split_at_lines_and_sentence_ends_and_drop_what_the_source_does_not_say() -> None:
    body = ("First sentence is here. Second one: with a colon.\nA new line, e.g. this one! Ok.\n"
            "Complete here. Cut in the middle ...")
    # "Ok." is a fragment; the sentence `passages_of` cut short is not quotable (its source does not say it).
    assert grounded.sentences(body) == ["First sentence is here.", "Second one: with a colon.",
                                        "A new line, e.g. this one!", "Complete here."]
    assert grounded.sentences("word " * 100, max_chars=40) == []  # too long to quote whole: never cut
    assert grounded.sentences("Это первое предложение. Это второе предложение.") == [
        "Это первое предложение.", "Это второе предложение."]
    assert len(grounded.sentences("日本語の文です、はい、そうです。これは二つ目の文ですよ、長いですね。")) == 2


def test_a_pair_is_two_sentences_that_follow_each_other_on_one_line() -> None:
    assert grounded.quotes("Short one here.\nOk.\nNext line sentence here.") == [
        "Short one here.", "Next line sentence here."]  # different lines: no pair
    assert grounded.quotes("One sentence is here. Ok. Another one is here.") == [
        "One sentence is here.", "Another one is here."]  # a dropped fragment between them: no pair
    assert "A first sentence. A second sentence." in grounded.quotes("A first sentence. A second sentence.")


def test_the_quoted_grammar_admits_only_a_passage_quote_citing_that_passage_or_not_found() -> None:
    text = grounded.compose("is shipping free?", PASSAGES)
    schema = grounded.quoted_schema(text)
    assert accepts(schema, '{"answer": "Shipping is free for orders over fifty euros.", "citations": ["c4"]}')
    pair = "Shipping is free for orders over fifty euros. Smaller orders pay five euros."
    assert accepts(schema, json.dumps({"answer": pair, "citations": ["c4"]}))  # two consecutive sentences
    assert accepts(schema, '{"answer": "not in the knowledge base", "citations": []}')
    # The citation must be the quote's own passage, alone.
    assert not accepts(schema, '{"answer": "Shipping is free for orders over fifty euros.", "citations": ["c9"]}')
    assert not accepts(schema, '{"answer": "Shipping is free for orders over fifty euros.", '
                               '"citations": ["c4", "c9"]}')
    assert not accepts(schema, '{"answer": "Shipping is free for all orders.", "citations": ["c4"]}')  # not a quote
    assert not accepts(schema, '{"answer": "Shipping > Costs", "citations": ["c4"]}')  # the title is not quotable
    skipping = "Shipping is free for orders over fifty euros. Express delivery costs ten euros extra."
    assert not accepts(schema, json.dumps({"answer": skipping, "citations": ["c4"]}))  # not consecutive
    options = grounded.quoted_options(schema)
    assert options is not None and options[0][0] == "c4"
    assert options[1] == ("c9", ["Use the returns form within thirty days of delivery."])


def test_the_quoted_grammar_with_nothing_quotable_admits_only_not_found() -> None:
    for passages in ([], [grounded.Passage("c1", "T", "Tiny. Ok.")]):
        text = grounded.compose("anything", passages)
        schema = grounded.quoted_schema(text)
        assert accepts(schema, '{"answer": "not in the knowledge base", "citations": []}')
        assert not accepts(schema, '{"answer": "Tiny.", "citations": ["c1"]}')
        assert grounded.quoted_options(schema) == []
        gen = extractive().answer(text, JsonSchemaConstraint(schema=schema))  # not-found, not an error
        assert json.loads(gen.text) == {"answer": grounded.NOT_FOUND, "citations": []}


def test_only_a_schema_quoted_schema_built_counts_as_quoted() -> None:
    written = grounded.answer_schema(["c4", "c9"])
    assert grounded.quoted_options(written) is None
    assert grounded.quoted_options({"anyOf": [True]}) is None
    assert grounded.quoted_options({"title": grounded.QUOTED, "anyOf": [True]}) is None
    assert grounded.quoted_options({"title": grounded.QUOTED, "anyOf": [
        {"properties": {"answer": {"enum": [1, 2]}, "citations": {"items": {"enum": ["c1"]}}}}]}) is None


def extractive(threshold: float = 0.3) -> ExtractiveBackend:
    return ExtractiveBackend(ModelInfo(id="extract", location="local", context_window=None), WordHashEmbedder,
                             not_found_below=threshold)


def test_the_extractive_answer_is_the_closest_quote_of_the_top_passage() -> None:
    text = grounded.compose("which orders get free shipping", PASSAGES)
    constraint = JsonSchemaConstraint(schema=grounded.quoted_schema(text))
    gen = extractive().answer(text, constraint)
    answer = json.loads(gen.text)
    assert answer["citations"] == ["c4"]
    assert answer["answer"] in ("Shipping is free for orders over fifty euros.",
                                "Shipping is free for orders over fifty euros. Smaller orders pay five euros.")
    assert accepts(constraint.schema, gen.text)
    top = gen.logprobs[0]
    assert top.logprob < 0 and len(top.top) == 2 and top.top[0].logprob >= top.top[1].logprob
    # The runner-up is another answer, not the chosen sentence inside or around a pair.
    assert top.top[1].token not in answer["answer"] and answer["answer"] not in top.top[1].token


def test_the_extractive_rung_answers_not_found_when_no_quote_is_close() -> None:
    text = grounded.compose("who won the football match", PASSAGES)
    gen = extractive(threshold=0.5).answer(text, JsonSchemaConstraint(schema=grounded.quoted_schema(text)))
    assert json.loads(gen.text) == {"answer": grounded.NOT_FOUND, "citations": []}
    # Not certain: its log-probability and the best quote as the runner-up let accept rules escalate it.
    top = gen.logprobs[0]
    assert top.token == grounded.NOT_FOUND and top.logprob < 0 and top.top[1].token != grounded.NOT_FOUND
    sure = extractive(threshold=0.99).answer(text, JsonSchemaConstraint(schema=grounded.quoted_schema(text)))
    assert sure.logprobs[0].logprob > top.logprob  # further under the threshold, surer


def test_the_extractive_rung_refuses_a_request_that_is_not_a_quoted_grounded_one() -> None:
    with pytest.raises(InvalidRequest, match="quoted"):
        extractive().answer("just a chat message", None)
    with pytest.raises(InvalidRequest, match="quoted"):  # a caller's own schema, even one shaped like ours
        extractive().answer("x\n\nQuestion: y", JsonSchemaConstraint(schema={"anyOf": [True]}))
    written = grounded.compose("is shipping free?", PASSAGES)
    with pytest.raises(InvalidRequest, match="quoted"):
        extractive().answer(written, JsonSchemaConstraint(schema=grounded.answer_schema(["c4", "c9"])))


def test_a_quoted_contract_served_by_the_extractive_rung_escalates_low_retrieval(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "shipping.md").write_text("# Shipping\n\n## Costs\n\nShipping is free for orders over fifty euros. "
                                      "Smaller orders pay five euros.\n")
    kb = KnowledgeBase(kb_path(tmp_path, "help"), "help")
    kb.add([docs], WordHashEmbedder())
    kb.close()
    spec = ContractSpec.model_validate({
        "name": "helpdesk", "grounding": {"knowledge_base": "help", "top_k": 1, "answer": "quoted"},
        "ladder": [{"model": "extract", "accept": {"min_retrieval": 0.3}}, {"model": "big"}]})
    big = FakeBackend(info=ModelInfo(id="big", location="remote", context_window=None))
    router = Router(Fleet.of_backends([extractive(), big]), {"helpdesk": Contract.load(spec)},
                    library=Library(tmp_path, ["help"], WordHashEmbedder))
    result = asyncio.run(router.run("helpdesk", "is shipping free for orders over fifty euros"))
    assert result.model == "extract" and result.outcome is not None and result.outcome.valid
    assert json.loads(result.outcome.content or "")["answer"].startswith("Shipping is free")
    assert not big.history
    big.enqueue([FakeReply('{"answer": "not in the knowledge base", "citations": []}')])
    result = asyncio.run(router.run("helpdesk", "quantum chromodynamics lecture notes"))
    assert result.attempts[0].status == "skipped" and result.model == "big"
    assert big.history[-1].constraint.schema == grounded.quoted_schema(result.grounded_input or "")  # type: ignore[union-attr]


def test_an_extractive_model_serves_quoted_grounded_contracts_only() -> None:
    base = {"models": [{"id": "extract", "kind": "extractive"}, {"id": "small", "kind": "fake"}],
            "knowledge_bases": [{"name": "help"}], "default_model": "small"}
    quoted = {"name": "q", "grounding": {"knowledge_base": "help", "answer": "quoted"}, "ladder": ["extract"]}
    FleetConfig.model_validate({**base, "contracts": [quoted]})
    written = {"name": "w", "grounding": {"knowledge_base": "help"}, "ladder": ["extract"]}
    with pytest.raises(ValidationError, match="grounding.answer: quoted"):
        FleetConfig.model_validate({**base, "contracts": [written]})
    with pytest.raises(ValidationError, match="extractive model"):
        FleetConfig.model_validate({**base, "default_model": "extract"})
    unset = {k: v for k, v in base.items() if k != "default_model"}
    assert FleetConfig.model_validate({**unset, "contracts": [quoted]}).default_id == "small"  # not the extractive
    with pytest.raises(ValidationError, match="tenants"):
        FleetConfig.model_validate({**base, "tenants": [{"name": "acme", "models": ["extract"]}]})
    step = {"name": "flow", "steps": [{"id": "a", "model": "extract"}]}
    with pytest.raises(ValidationError, match="workflows"):
        FleetConfig.model_validate({**base, "workflows": [step]})
    with pytest.raises(ValidationError, match="'written' or 'quoted'"):
        ContractSpec.model_validate({**quoted, "grounding": {"knowledge_base": "help", "answer": "paraphrased"}})


def test_the_extractive_rung_on_real_minilm_embeddings_quotes_the_answer_and_refuses_the_unrelated() -> None:
    from smallfleet.embeddings import Encoder

    encoder = Encoder()
    rung = ExtractiveBackend(ModelInfo(id="extract", location="local", context_window=None), lambda: encoder)
    text = grounded.compose("how much does shipping cost for small orders?", PASSAGES)
    answer = json.loads(rung.answer(text, JsonSchemaConstraint(schema=grounded.quoted_schema(text))).text)
    assert answer["citations"] == ["c4"] and "five euros" in answer["answer"]
    unrelated = grounded.compose("who painted the Mona Lisa?", PASSAGES)
    gen = rung.answer(unrelated, JsonSchemaConstraint(schema=grounded.quoted_schema(unrelated)))
    assert json.loads(gen.text) == {"answer": grounded.NOT_FOUND, "citations": []}
