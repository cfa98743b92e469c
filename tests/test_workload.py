"""The reference workload is reproducible and varied, and the simulated teacher answers from it."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator

from smallfleet.sim.teacher import TeacherOracle, reference_labels
from smallfleet.workload import documents, tickets


def test_same_seed_same_workload_and_labels_fit_their_schemas() -> None:
    assert [t.text for t in tickets.generate_tickets(50)] == [t.text for t in tickets.generate_tickets(50)]
    all_tickets, all_docs = tickets.generate_tickets(500), documents.generate_documents(300)
    assert len({t.text for t in all_tickets}) == 500 and len({d.text for d in all_docs}) == 300
    for t in all_tickets:
        Draft202012Validator(tickets.SCHEMA).validate(t.label)
    for d in all_docs:
        Draft202012Validator(documents.SCHEMA).validate(d.label)
    assert {t.label["category"] for t in all_tickets} == set(tickets.CATEGORIES)
    assert 40 < sum(t.ambiguous for t in all_tickets) < 120


def test_the_pools_are_prefix_stable_with_unique_texts() -> None:
    pool = tickets.generate_tickets(tickets.POOL)
    assert [t.text for t in pool[:500]] == [t.text for t in tickets.generate_tickets(500)]
    assert len({t.text for t in pool}) == tickets.POOL  # the simulated teacher looks answers up by text
    docs = documents.generate_documents(documents.POOL)
    assert [d.text for d in docs[:300]] == [d.text for d in documents.generate_documents(300)]
    assert len({d.text for d in docs}) == documents.POOL


def test_teacher_accuracy_is_as_configured_and_reproducible() -> None:
    oracle = TeacherOracle(reference_labels(), accuracy=0.9)
    items = tickets.generate_tickets(500)
    right = sum(oracle.answer(t.text) == t.label for t in items) / len(items)
    assert 0.85 < right < 0.95
    assert oracle.answer(items[0].text) == oracle.answer(items[0].text)
    reply = json.loads(oracle({"messages": [{"role": "user", "content": items[0].text}]}))
    assert set(reply) == {"category", "urgency", "product"}
    header = oracle({"messages": [{"role": "user", "content": documents.generate_documents(1)[0].text}],
                     "response_format": {"json_schema": {"schema": documents.HEADER_SCHEMA}}})
    assert set(json.loads(header)) == set(documents.HEADER_FIELDS)
