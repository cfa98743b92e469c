"""The PII workload is reproducible, its spans are exact, its structured values pass the checks a real
detector runs (python-stdnum, phonenumbers, Luhn, ipaddress), its decoys fail them, and the canaries
are unique enough to grep for."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import itertools
import json
import math
import os
import re
import subprocess
import sys
import uuid
from collections import Counter

import phonenumbers
import pytest
from stdnum import iban as stdnum_iban
from stdnum import isbn, luhn
from stdnum.de import idnr
from stdnum.es import dni
from stdnum.fi import hetu
from stdnum.fr import nir
from stdnum.iso7064 import mod_97_10
from stdnum.nl import bsn
from stdnum.pl import pesel
from stdnum.se import personnummer
from stdnum.us import ssn

from smallfleet.workload import pii

EU_VALIDATORS = (idnr, bsn, dni, nir, pesel, hetu, personnummer)
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
SECRET_SHAPES = tuple(re.compile(p) for p in (
    r"sk-[A-Za-z0-9]{48}", r"sk-proj-[\w-]{64}", r"sk-ant-api03-[\w-]{93}AA", r"gh[pos]_[A-Za-z0-9]{36}",
    r"github_pat_[A-Z0-9]{22}_[A-Za-z0-9]{59}", r"(?:AKIA|ASIA)[A-Z2-7]{16}", r"[A-Za-z0-9/+]{40}",
    r"xox[bp]-\d{12}-\d{13}-[A-Za-z0-9]{24}", r"[sr]k_live_[A-Za-z0-9]{24}", r"AIza[\w-]{35}",
    r"SG\.[\w-]{22}\.[\w-]{43}", r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]{43}", r"[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}",
    r"[A-Za-z0-9!*_-]{16}",
))
FIRST_NAMES = {first for firsts, _ in pii.NAMES.values() for first in firsts}


@pytest.fixture(scope="module")
def eval_set() -> list[pii.Snippet]:
    return pii.generate_eval_set()


@pytest.fixture(scope="module")
def canaries() -> list[pii.Snippet]:
    return pii.generate_canaries()


def _phone_valid(value: str) -> bool:
    """Valid for phonenumbers: as written (+CC...) or in the national format of one of the regions used."""
    regions = (None,) if value.startswith("+") else pii.PHONE_REGIONS
    for region in regions:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(value, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def _ip_valid(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())


def _structured_hits(value: str) -> list[str]:
    """Which detector checks (python-stdnum, Luhn, ipaddress) accept `value`."""
    hits = []
    runs = [re.sub(r"[ -]", "", value), *re.findall(r"\d+", value)]
    if any(run.isdigit() and 12 <= len(run) <= 19 and luhn.is_valid(run) for run in runs):
        hits.append("luhn")
    hits += [name for name, module in (("iban", stdnum_iban), ("ssn", ssn)) if module.is_valid(value)]
    hits += [module.__name__ for module in EU_VALIDATORS if module.is_valid(value)]
    if _ip_valid(value):
        hits.append("ip")
    return hits


def test_same_seed_same_snippets_other_seed_other_snippets() -> None:
    first, again = pii.generate_eval_set(), pii.generate_eval_set()
    assert first == again and pii.to_jsonl(first) == pii.to_jsonl(again)
    assert [s.text for s in pii.generate_eval_set(seed=14)] != [s.text for s in first]
    assert pii.generate_canaries() == pii.generate_canaries()
    assert pii.canary_values(pii.generate_canaries(seed=18)) != pii.canary_values(pii.generate_canaries())
    assert pii.generate_eval_set(60) == first[:60]  # prefix-stable


def test_output_does_not_depend_on_hash_randomisation() -> None:
    code = ("import hashlib; from smallfleet.workload import pii; "
            "print(hashlib.sha256((pii.to_jsonl(pii.generate_eval_set(120)) "
            "+ pii.to_jsonl(pii.generate_canaries(60))).encode()).hexdigest())")
    here = hashlib.sha256((pii.to_jsonl(pii.generate_eval_set(120))
                           + pii.to_jsonl(pii.generate_canaries(60))).encode()).hexdigest()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == here


def test_spans_are_exact_and_do_not_overlap(eval_set: list[pii.Snippet], canaries: list[pii.Snippet]) -> None:
    assert len({s.id for s in eval_set + canaries}) == len(eval_set) + len(canaries)
    for snippet in eval_set + canaries:
        assert snippet.kind in pii.KINDS
        assert all(span.category in pii.CATEGORIES for span in snippet.spans)
        assert all(decoy.category in pii.DECOY_KINDS for decoy in snippet.decoys)
        marked = sorted(snippet.spans + snippet.decoys, key=lambda s: s.start)
        for span in marked:
            assert snippet.text[span.start:span.end] == span.value and span.value == span.value.strip() != ""
        for left, right in itertools.pairwise(marked):
            assert left.end <= right.start, (snippet.id, left, right)
        if snippet.kind == "positive":
            assert snippet.spans
    assert not any("<<" in s.text or ">>" in s.text for s in eval_set + canaries)  # every slot was filled


def test_structured_values_pass_the_detector_checks(eval_set: list[pii.Snippet], canaries: list[pii.Snippet]) -> None:
    by_category: dict[str, list[str]] = {}
    for snippet in eval_set + canaries:
        for span in snippet.spans:
            by_category.setdefault(span.category, []).append(span.value)
    for value in by_category[pii.CREDIT_CARD]:
        digits = re.sub(r"[ -]", "", value)
        assert digits.isdigit() and len(digits) in (14, 15, 16) and luhn.is_valid(digits), value
    assert {len(re.sub(r"[ -]", "", v)) for v in by_category[pii.CREDIT_CARD]} == {14, 15, 16}  # Diners, Amex, rest
    assert {" " in v for v in by_category[pii.CREDIT_CARD]} == {True, False}
    for value in by_category[pii.IBAN]:
        assert stdnum_iban.is_valid(value), value
    assert len({v[:2] for v in by_category[pii.IBAN]}) >= 8  # several countries
    assert {" " in v for v in by_category[pii.IBAN]} == {True, False}  # grouped and compact
    for value in by_category[pii.US_SSN]:
        assert ssn.is_valid(value) and value[:3] not in ("000", "666") and value[0] != "9", value
    schemes = set()
    for value in by_category[pii.EU_NATIONAL_ID]:
        valid = {m.__name__ for m in EU_VALIDATORS if m.is_valid(value)}
        assert valid, value
        schemes |= valid
    assert len(schemes) == len(EU_VALIDATORS)  # every scheme is represented
    countries = Counter()
    for value in by_category[pii.PHONE]:
        assert _phone_valid(value), value
        if value.startswith("+"):
            countries[phonenumbers.region_code_for_number(phonenumbers.parse(value))] += 1
    assert len(countries) >= 8 and any(not v.startswith("+") for v in by_category[pii.PHONE])
    versions = Counter(ipaddress.ip_address(v).version for v in by_category[pii.IP_ADDRESS])
    assert versions[4] > 0 and versions[6] > 0
    for value in by_category[pii.EMAIL]:
        assert EMAIL_RE.fullmatch(value), value
    for value in by_category[pii.SECRET]:
        assert any(shape.fullmatch(value) for shape in SECRET_SHAPES) and _entropy(value) > 3.0, value
        if value.startswith("eyJ"):
            header = json.loads(base64.urlsafe_b64decode(value.split(".")[0] + "=="))
            assert header["typ"] == "JWT"
    assert sum(v.startswith(("sk-", "ghp_", "gho_", "ghs_", "AKIA", "ASIA", "xoxb-", "xoxp-"))
               for v in by_category[pii.SECRET]) >= 10
    for value in by_category[pii.PERSON]:
        first = value.split()[0]
        assert first in FIRST_NAMES or (re.fullmatch(r"\w\.", first) and first[0].isupper()), value
    for value in by_category[pii.LOCATION] + by_category[pii.ORGANIZATION]:
        assert value[0].isupper() or value[0].isdigit(), value


def test_decoys_fail_the_checks_they_imitate(eval_set: list[pii.Snippet], canaries: list[pii.Snippet]) -> None:
    decoys: dict[str, list[str]] = {}
    for snippet in eval_set + canaries:
        for decoy in snippet.decoys:
            decoys.setdefault(decoy.category, []).append(decoy.value)
            assert not _structured_hits(decoy.value), (decoy, _structured_hits(decoy.value))
    assert set(decoys) == set(pii.DECOY_KINDS)
    for value in decoys["non_luhn_number"]:  # 16 digits, card-like, but the check digit is wrong
        digits = re.sub(r"[ -]", "", value)
        assert len(digits) == 16 and not luhn.is_valid(digits)
    for value in decoys["bad_iban"]:  # a well-formed IBAN except for its check digits
        compact = stdnum_iban.compact(value)
        assert not mod_97_10.is_valid(compact[4:] + compact[:4]) and not stdnum_iban.is_valid(value)
        fixed = compact[:2] + stdnum_iban.calc_check_digits(compact) + compact[4:]
        assert stdnum_iban.is_valid(fixed, check_country=False), value
    for value in decoys["non_ssn_number"]:
        digits = value.replace("-", "")
        assert len(digits) == 9 and digits.isdigit() and not ssn.is_valid(value)
        assert digits[:3] in ("000", "666") or digits[0] == "9"
    for value in decoys["version"] + decoys["semver"]:
        assert not _ip_valid(value) and re.search(r"\d+\.\d+", value)
    for value in decoys["uuid"]:
        assert uuid.UUID(value).version == 4
    for value in decoys["isbn"]:
        assert isbn.is_valid(value)
    for value in decoys["git_hash"] + decoys["checksum"]:
        assert re.fullmatch(r"[0-9a-f]{7}|[0-9a-f]{40}|[0-9a-f]{64}", value)
    for value in decoys["hex_colour"]:
        assert re.fullmatch(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})", value)


def test_eval_set_sizes_and_category_counts(eval_set: list[pii.Snippet]) -> None:
    assert len(eval_set) == 400
    hard = [s for s in eval_set if s.kind == "hard_negative"]
    assert len(hard) >= 0.25 * len(eval_set)
    counts = Counter(span.category for s in eval_set for span in s.spans)
    assert all(counts[c] >= 20 for c in pii.CATEGORIES), counts
    assert sum(not s.spans for s in hard) >= 0.7 * len(hard)  # most hard negatives have no PII at all
    lookalike_words = ("apple pie", "the bill", "Will do", "grace period", "Georgia", "Victoria", "Mark the", "chase")
    assert sum(any(w in s.text for w in lookalike_words) for s in hard) >= 5
    assert len({s.text for s in eval_set}) == len(eval_set)


def test_canaries_are_unique_and_greppable(canaries: list[pii.Snippet]) -> None:
    values = pii.canary_values(canaries)
    spans = [span for s in canaries for span in s.spans]
    assert len(values) == len(spans) >= 200  # no value planted twice
    counts = Counter(span.category for span in spans)
    assert all(counts[c] >= 15 for c in pii.CATEGORIES), counts
    corpus = "\n".join(s.text for s in canaries)
    for value in values:
        assert corpus.count(value) == 1, value  # a grep hit points at exactly one planted value
    ordered = sorted(values, key=len)
    for i, short in enumerate(ordered):
        assert not any(short in longer for longer in ordered[i + 1:]), short
    assert any(s.text.startswith("user:") and "\nassistant:" in s.text for s in canaries)
    assert any('"arguments"' in s.text for s in canaries)


def test_jsonl_round_trips(canaries: list[pii.Snippet]) -> None:
    lines = pii.to_jsonl(canaries[:30]).splitlines()
    assert len(lines) == 30
    for line, snippet in zip(lines, canaries[:30], strict=True):
        row = json.loads(line)
        assert row["id"] == snippet.id and row["text"] == snippet.text and row["kind"] == snippet.kind
        assert [pii.Span(**s) for s in row["spans"]] == list(snippet.spans)
        assert [pii.Span(**s) for s in row["decoys"]] == list(snippet.decoys)
