"""The guard's detector: checked structures, key shapes, NER names, custom patterns; look-alikes left alone."""

from __future__ import annotations

import pytest

from smallfleet.errors import ConfigError
from smallfleet.guard.detect import Detector, Finding, _resolve
from smallfleet.guard.evaluate import run_guard_eval, score
from smallfleet.workload.pii import Snippet, Span


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(patterns={"EMPLOYEE_ID": [r"\bEMP-\d{6}\b"]}, terms={"PROJECT": ["Project Bluebird"]})


def _found(detector: Detector, text: str) -> dict[str, str]:
    return {f.value: f.category for f in detector.find(text)}


def test_checked_structures_and_keys_are_found(detector: Detector) -> None:
    text = ("mail maria.g@web.de, card 4111-1111-1111-1111, IBAN DE89 3704 0044 0532 0130 00, "
            "server 10.2.3.4, token=Zq8xR2mK9vL4pT7w, key AKIAIOSFODNN7EXAMPL2, Steuer-IdNr 65929970489, "
            "BSN 1112.22.333, ssn 536-90-4399")
    found = _found(detector, text)
    assert found["maria.g@web.de"] == "EMAIL"
    assert found["4111-1111-1111-1111"] == "CREDIT_CARD"
    assert found["DE89 3704 0044 0532 0130 00"] == "IBAN"
    assert found["10.2.3.4"] == "IP_ADDRESS"
    assert found["Zq8xR2mK9vL4pT7w"] == "SECRET" and found["AKIAIOSFODNN7EXAMPL2"] == "SECRET"
    assert found["65929970489"] == "EU_NATIONAL_ID" and found["1112.22.333"] == "EU_NATIONAL_ID"
    assert found["536-90-4399"] == "US_SSN"


def test_look_alikes_are_left_alone(detector: Detector) -> None:
    text = ("Order 4111-1111-1111-1112 (fails Luhn) shipped 2024-05-01T10:22:31Z, build v10.0.19045, "
            "SKU AB-12345-XL, price $1,299.00, IBAN DE00 3704 0044 0532 0130 00 (bad check digits), "
            "commit 9fceb02d0ae598e95dc970b74767f19372d61af8, colour #1a2b3c, token=aaaaaaaaaaaa")
    structured = {f.category for f in detector.find(text)} - {"PERSON", "LOCATION", "ORGANIZATION"}
    assert structured == set()


def test_names_places_and_custom_categories(detector: Detector) -> None:
    found = _found(detector, "Maria Gonzalez from Munich asked about Project Bluebird for EMP-123456.")
    assert found.get("Maria Gonzalez") == "PERSON" and found.get("Munich") == "LOCATION"
    assert found["Project Bluebird"] == "PROJECT" and found["EMP-123456"] == "EMPLOYEE_ID"


def test_a_checked_structure_wins_over_an_ner_guess_on_the_same_characters() -> None:
    ner = Finding("ORGANIZATION", 0, 10, "x" * 10, 0.99, "spacy")
    card = Finding("CREDIT_CARD", 2, 12, "y" * 10, 0.6, "luhn")
    later = Finding("PERSON", 20, 25, "z" * 5, 0.8, "spacy")
    assert _resolve([ner, later, card]) == [card, later]


def test_bad_configuration_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown categories"):
        Detector(categories=["EMAIL", "PASSPORT"])
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        Detector(patterns={"X": ["(unclosed"]}, categories=["EMAIL"])


def test_scores_count_overlaps_per_category() -> None:
    snippets = [Snippet("a", "call Ann at x@y.io", (Span("PERSON", 5, 8, "Ann"), Span("EMAIL", 12, 18, "x@y.io")),
                        "positive"),
                Snippet("b", "order 123", (), "hard_negative")]
    found = [[Finding("EMAIL", 12, 18, "x@y.io", 1, "r"), Finding("ORGANIZATION", 5, 8, "Ann", 1, "r")],
             [Finding("PHONE", 6, 9, "123", 1, "r")]]
    out = score(found, snippets)
    assert out["categories"]["EMAIL"] == {"labelled": 1, "found": 1, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert out["categories"]["PERSON"]["recall"] == 0.0 and out["categories"]["ORGANIZATION"]["precision"] == 0.0
    assert out["masked"] == 1.0  # Ann was covered, under the wrong category: still not sent out
    assert out["false_positives_on_hard_negatives"] == 1


def test_guard_eval_on_the_labelled_set(detector: Detector) -> None:
    out = run_guard_eval(n=80, detector=detector)
    rows = out["categories"]
    for category in ("EMAIL", "IBAN", "CREDIT_CARD", "IP_ADDRESS", "EU_NATIONAL_ID"):
        assert rows[category]["recall"] >= 0.8 and rows[category]["precision"] >= 0.8, (category, rows[category])
    assert out["snippets"] == 80 and out["ms_per_request"]["p50"] > 0


def test_phone_numbers_need_a_phone_shape_or_a_phone_word(detector: Detector) -> None:
    found = _found(detector, "Call me on 07 44 01 47 37 or +31 20 992 7782. Order 666378156 shipped 2025-05-27, "
                             "invoice INV-2025-0036, at 22.10.2026 17:36:27, ref 666-77-4629, host 10.2.3.4.")
    phones = {v for v, c in found.items() if c == "PHONE"}
    assert phones == {"07 44 01 47 37", "+31 20 992 7782"}
    assert found["10.2.3.4"] == "IP_ADDRESS"


def test_secrets_by_context_and_by_randomness_but_not_commit_hashes(detector: Detector) -> None:
    text = ("The user's API key is 5DvWvndrgH!!hET5. Token for the integration: 1d9fd0041d7a9afcc88642896c357f65. "
            "Creds FGAAZWRqKpKGVzMiXVo3v1oQuEuY7nNg1nWHDnCB here. Fixed in commit 9fceb02d0ae598e95dc970b74767f19372d61af8.")
    secrets = {v for v, c in _found(detector, text).items() if c == "SECRET"}
    assert secrets == {"5DvWvndrgH!!hET5", "1d9fd0041d7a9afcc88642896c357f65",
                       "FGAAZWRqKpKGVzMiXVo3v1oQuEuY7nNg1nWHDnCB"}


def test_addresses_companies_and_the_proper_noun_safety_net() -> None:
    names = ["LOCATION", "ORGANIZATION", "PERSON"]
    plain, netted = Detector(categories=names), Detector(categories=names, proper_nouns=True)
    found = _found(plain, "Ship to Stationsweg 209, 9218 LZ Amsterdam or 23 Awolowo Road, Abuja 317556; invoice "
                          "Tulip Architects Ltda.")
    assert found == {"Stationsweg 209, 9218 LZ Amsterdam": "LOCATION", "23 Awolowo Road, Abuja 317556": "LOCATION",
                     "Tulip Architects Ltda.": "ORGANIZATION"}  # the whole address, not just the city NER saw
    text = "The Zorblax team agreed with Quibbly on Tuesday about the Ferntop rollout."
    assert "Ferntop" not in _found(plain, text)
    assert _found(netted, text)["Ferntop"] == "PROPER_NOUN"  # a name no recogniser claimed: still not sent out


def test_names_in_keyword_arguments_and_in_rows_of_delimited_data(detector: Detector) -> None:
    found = _found(detector, 'call verify_identity(ssn="696-70-2250", full_name="Ana Pereira")')
    assert found.get("Ana Pereira") == "PERSON"
    rows = _found(detector, "id|name|status\n7|Xiaoling Wang|active\n8|Bo Chen|Shipped")
    assert rows.get("Xiaoling Wang") == "PERSON" and rows.get("Bo Chen") == "PERSON"
    assert not {"active", "Shipped", "status"} & set(rows)  # one-word cells are left alone
    assert _found(detector, "Order;Status;Total\nA-19;Shipped;12.50") == {}


def test_allowed_domain_names_are_not_findings() -> None:
    question = "Is there a ternary operator in Python?"
    assert {f.value for f in Detector().find(question)} == {"Python"}  # NER tags it (as a place)
    allowed = Detector(allow=["python"])
    assert allowed.find(question) == []
    assert {f.value for f in allowed.find(question + " Mail ann.lee@example.org")} == {"ann.lee@example.org"}
