"""The shifted invoice set keeps the main set's labels and value domains but never its texts."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from jsonschema import Draft202012Validator, ValidationError

from smallfleet.sim.teacher import TeacherOracle, reference_labels
from smallfleet.workload import documents
from smallfleet.workload.documents import Document, generate_documents, generate_shifted_documents

# A phrase only one shifted layout writes, checked against the text (not against the generator's choice).
LAYOUT_MARKERS = {"remittance": "Remittance advice", "key_value": "Document no.: ", "ocr": "[scan p.1/1]",
                  "forwarded": "Forwarded message", "german": "Rechnung Nr. ", "french": "Facture n° "}


@pytest.fixture(scope="module")
def shifted() -> list[Document]:
    return generate_shifted_documents(300)


def _validator(schema: dict[str, object]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_same_seed_same_documents_and_prefix_stable() -> None:
    first, again = generate_shifted_documents(60), generate_shifted_documents(60)
    assert [(d.id, d.text, d.label) for d in first] == [(d.id, d.text, d.label) for d in again]
    assert [d.text for d in generate_shifted_documents(20)] == [d.text for d in first[:20]]
    assert [d.text for d in generate_shifted_documents(20, seed=14)] != [d.text for d in first[:20]]


def test_labels_and_headers_fit_the_schemas(shifted: list[Document]) -> None:
    full, header = _validator(documents.SCHEMA), _validator(documents.HEADER_SCHEMA)
    with pytest.raises(ValidationError):  # the date format really is checked
        full.validate({**shifted[0].label, "date": "2024-13-40"})
    for d in shifted:
        full.validate(d.label)
        header.validate(d.header().label)
        assert round(float(d.label["total"]), 2) == d.label["total"]  # type: ignore[arg-type]
    assert {d.label["vendor"] for d in shifted} == set(documents.VENDORS)
    assert {d.label["currency"] for d in shifted} == set(documents.CURRENCIES)


def test_aliases_are_unambiguous() -> None:
    assert set(documents.ALIASES) == set(documents.VENDORS)
    owners: dict[str, str] = {}
    for vendor, aliases in documents.ALIASES.items():
        for alias in aliases:
            assert alias not in owners and alias != vendor
            owners[alias] = vendor
            assert not any(other in alias for other in documents.VENDORS if other != vendor)


def _total_written(total: float) -> set[str]:
    en, plain = f"{total:,.2f}", f"{total:.2f}"
    swap = en.replace(",", "\0").replace(".", ",")
    return {en, plain, swap.replace("\0", "."), swap.replace("\0", " ")}


def test_gold_fields_are_recoverable_from_the_text(shifted: list[Document]) -> None:
    alias_only = 0
    for d in shifted:
        vendor, total = str(d.label["vendor"]), float(d.label["total"])  # type: ignore[arg-type]
        assert d.label["invoice_number"] in d.text, d.id
        named = vendor in d.text
        by_alias = any(alias in d.text for alias in documents.ALIASES[vendor])
        assert named or by_alias, d.id
        alias_only += not named
        assert any(w in d.text for w in _total_written(total)), d.id
    assert alias_only > len(shifted) // 5  # aliases are really used, not only the canonical names


def test_texts_ids_and_date_formats_never_occur_in_the_main_set(shifted: list[Document]) -> None:
    main = generate_documents(300)
    assert not {d.text for d in shifted} & {d.text for d in main}
    assert len({d.text for d in shifted}) == len(shifted)
    assert all(d.id.startswith("sdoc-") for d in shifted)
    assert not {d.id for d in shifted} & {d.id for d in main}
    for d in shifted:
        issued = date.fromisoformat(str(d.label["date"]))
        main_formats = [issued.isoformat(), issued.strftime("%d/%m/%Y"), issued.strftime("%B %d, %Y"),
                        issued.strftime("%d %b %Y"), issued.strftime("%Y.%m.%d")]
        assert not any(f in d.text for f in main_formats), d.id


def test_at_least_four_layouts_in_a_hundred_documents() -> None:
    layouts: Counter[str] = Counter()
    for d in generate_shifted_documents(100):
        hits = [name for name, marker in LAYOUT_MARKERS.items() if marker in d.text]
        assert len(hits) == 1, (d.id, hits)
        layouts[hits[0]] += 1
    assert len(layouts) >= 4, layouts


def test_distractors_are_present(shifted: list[Document]) -> None:
    credit_notes = sum("CN-" in d.text for d in shifted)
    other_invoices = sum(d.text.count("INV-") > d.text.count(str(d.label["invoice_number"])) for d in shifted)
    assert credit_notes > len(shifted) // 4 and other_invoices > 0


def test_teacher_knows_the_shifted_documents() -> None:
    oracle = TeacherOracle(reference_labels(), 1.0)
    for d in generate_shifted_documents(100):
        assert oracle.answer(d.text) == d.label, d.id
        assert oracle.answer(d.text, list(documents.HEADER_FIELDS)) == d.header().label
