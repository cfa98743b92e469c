"""Reproducible invoice documents with gold fields (invoice number, vendor, date, total, currency).

How it is generated (fixed seed): pick the gold record, then render it in one of several layouts —
a formal invoice header, an accounts-payable email, a one-line bank-style memo, an OCR'd scan with
broken spacing — with the date in varied formats (ISO in the gold label), totals with currency
symbols or codes and thousands separators, and distractors (a PO number, a subtotal and tax line,
a due date) that a careless extractor would pick instead. Same seed, same documents.

The shifted set (`generate_shifted_documents`, ids `sdoc-NNNN`) has the same label schema and value
domains but texts the main set never produces: other layouts (a remittance advice, a key: value block
in shuffled order, a noisy OCR line, a forwarded mail thread with quoting, a German "Rechnung Nr." and
a French "Facture n°" invoice), vendor aliases (`ALIASES`: "ACME Corporation" -> "Acme Corp"),
currencies as names or new prefixes ("pounds sterling", "US$"), new date formats ("the 3rd of March
2024", "03-Mar-24", "2024/03/03", "03.03.2024", "3 mars 2024"), German and French number conventions
("1.234,56 EUR", "1 234,56 €"), and distractors (VAT, a previous balance, a credit note CN-#####, a
replaced invoice's INV-#####, a value or sent date, a payment deadline).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

VENDORS = ["Acme Corp", "Globex Ltd", "Initech GmbH", "Umbrella Supplies", "Stark Industrial", "Wayne Logistics",
           "Hooli Cloud", "Vandelay Imports", "Soylent Foods", "Tyrell Systems"]
CURRENCIES = {"EUR": "€", "USD": "$", "GBP": "£"}

SCHEMA = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string", "pattern": "^INV-[0-9]{5}$"},
        "vendor": {"enum": VENDORS},
        "date": {"type": "string", "format": "date"},
        "total": {"type": "number", "minimum": 0},
        "currency": {"enum": list(CURRENCIES)},
    },
    "required": ["invoice_number", "vendor", "date", "total", "currency"],
    "additionalProperties": False,
}

HEADER_FIELDS = ("invoice_number", "vendor", "currency")
HEADER_SCHEMA = {
    "type": "object",
    "properties": {k: SCHEMA["properties"][k] for k in HEADER_FIELDS},
    "required": list(HEADER_FIELDS),
    "additionalProperties": False,
}
HEADER_INSTRUCTIONS = "You read invoices. Answer with the invoice number, the vendor and the currency code."

INSTRUCTIONS = ("You extract fields from invoices. Answer with the invoice number, the vendor, the invoice date "
                "as YYYY-MM-DD, the total amount due as a number, and the currency code.")


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    label: dict[str, object]

    def header(self) -> Document:
        """The same document, labelled for the narrower invoice-header contract."""
        return Document(self.id, self.text, {k: self.label[k] for k in HEADER_FIELDS})


def _date_text(rng: random.Random, d: date) -> str:
    return rng.choice([d.isoformat(), d.strftime("%d/%m/%Y"), d.strftime("%B %d, %Y"), d.strftime("%d %b %Y"),
                       d.strftime("%Y.%m.%d")])


def _money(rng: random.Random, amount: float, currency: str) -> str:
    number = f"{amount:,.2f}" if rng.random() < 0.5 else f"{amount:.2f}"
    return rng.choice([f"{CURRENCIES[currency]}{number}", f"{number} {currency}", f"{currency} {number}"])


def make_document(rng: random.Random, index: int) -> Document:
    vendor = rng.choice(VENDORS)
    currency = rng.choice(list(CURRENCIES))
    issued = date(2024, 1, 1) + timedelta(days=rng.randrange(365))
    subtotal = round(rng.uniform(20, 9000), 2)
    tax = round(subtotal * rng.choice([0.0, 0.07, 0.2]), 2)
    total = round(subtotal + tax, 2)
    number = f"INV-{rng.randint(10000, 99999)}"
    po = f"PO-{rng.randint(1000, 9999)}"
    due = _date_text(rng, issued + timedelta(days=30))
    when = _date_text(rng, issued)
    layout = rng.randrange(4)
    if layout == 0:
        text = (f"{vendor}\nINVOICE {number}\nDate: {when}\nYour reference: {po}\nSubtotal: "
                f"{_money(rng, subtotal, currency)}\nTax: {_money(rng, tax, currency)}\nTOTAL DUE: "
                f"{_money(rng, total, currency)}\nPayment due {due}")
    elif layout == 1:
        text = (f"Hello accounts payable, please find attached invoice {number} from {vendor} dated {when} "
                f"for {_money(rng, total, currency)} (order {po}). Payment is due on {due}. Kind regards")
    elif layout == 2:
        text = f"{when} | {vendor} | inv {number} | amt {_money(rng, total, currency)} | ref {po}"
    else:
        text = (f"{vendor.upper()}  l N V O I C E   No. {number}\n d a t e {when}   PO {po}\n"
                f"net {_money(rng, subtotal, currency)}  vat {_money(rng, tax, currency)}\n"
                f"AMOUNT PAYABLE {_money(rng, total, currency)}")
    label = _label(number, vendor, issued, total, currency)
    return Document(f"d{index:04d}", text, label)


def _label(number: str, vendor: str, issued: date, total: float, currency: str) -> dict[str, Any]:
    return {"invoice_number": number, "vendor": vendor, "date": issued.isoformat(), "total": total,
            "currency": currency}


# The most documents the demo and the simulated teacher use (prefix-stable like the tickets; unique texts).
POOL = 1000


def generate_documents(n: int = 300, seed: int = 11) -> list[Document]:
    rng = random.Random(seed)
    return [make_document(rng, i) for i in range(n)]


# The shifted part of the workload: layouts, vendor aliases, date formats, money conventions and
# distractors that never occur in `generate_documents`. Same label schema and value domains; a
# specialist trained on the main set is tested on these to show how much it learnt the task rather
# than the layouts. Every alias below stands for exactly one vendor in VENDORS.
ALIASES: dict[str, tuple[str, ...]] = {
    "Acme Corp": ("ACME Corporation", "Acme Corporation Inc"),
    "Globex Ltd": ("Globex Limited", "Globex Intl. Ltd"),
    "Initech GmbH": ("Initech Gesellschaft mbH", "INITECH Deutschland"),
    "Umbrella Supplies": ("Umbrella Supply Co.", "Umbrella Sup."),
    "Stark Industrial": ("Stark Industrial Inc.", "Stark Ind."),
    "Wayne Logistics": ("Wayne Log.", "WayneLog Freight"),
    "Hooli Cloud": ("Hooli Cloud Services", "Hooli Inc. (Cloud division)"),
    "Vandelay Imports": ("Vandelay Import/Export", "Vandelay Imp."),
    "Soylent Foods": ("Soylent Food Co.", "Soylent Nutrition"),
    "Tyrell Systems": ("Tyrell Sys.", "Tyrell Corp. Systems Division"),
}
# Currency names by language, and English prefixes: none is used by the main set.
CURRENCY_NAMES: dict[str, dict[str, str]] = {
    "EUR": {"en": "euros", "de": "Euro", "fr": "euros"},
    "USD": {"en": "US dollars", "de": "US-Dollar", "fr": "dollars US"},
    "GBP": {"en": "pounds sterling", "de": "Pfund Sterling", "fr": "livres sterling"},
}
CURRENCY_PREFIXES = {"EUR": "€ ", "USD": "US$", "GBP": "GB£"}
GERMAN_MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
                 "November", "Dezember")
FRENCH_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
                 "novembre", "décembre")
SHIFTED_LAYOUTS = ("remittance", "key_value", "ocr", "forwarded", "german", "french")
_OCR_CONFUSIONS = {"o": "0", "O": "0", "i": "l", "I": "l", "l": "1", "e": "c", "a": "o", "S": "5", "B": "8",
                   "E": "F", "T": "7"}


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _shifted_date_text(rng: random.Random, d: date, language: str = "en") -> str:
    """`d` in a format the main set never uses ("the 3rd of March 2024", "03-Mar-24", "03.03.2024", "3 mars 2024")."""
    if language == "de":
        return rng.choice([d.strftime("%d.%m.%Y"), f"{d.day}. {GERMAN_MONTHS[d.month - 1]} {d.year}"])
    if language == "fr":
        written = f"{'1er' if d.day == 1 else d.day} {FRENCH_MONTHS[d.month - 1]} {d.year}"
        return rng.choice([written, f"le {written}"])
    return rng.choice([f"the {_ordinal(d.day)} of {d:%B} {d.year}", d.strftime("%d-%b-%y"), d.strftime("%Y/%m/%d"),
                       f"{d:%B} {_ordinal(d.day)}, {d.year}"])


def _number(amount: float, language: str, grouped: bool = True) -> str:
    """`amount` with 2 decimals in a language's convention: 1,234.56 (en), 1.234,56 (de), 1 234,56 (fr)."""
    text = f"{amount:,.2f}" if grouped else f"{amount:.2f}"
    thousands, decimal = {"en": (",", "."), "de": (".", ","), "fr": (" ", ",")}[language]
    return text.replace(",", "\0").replace(".", decimal).replace("\0", thousands)


def _shifted_money(rng: random.Random, amount: float, currency: str, language: str = "en") -> str:
    """A money amount as the main set never writes it: "1.234,56 EUR", "US$1,234.56", "1,234.56 pounds sterling"."""
    if language == "en":
        number = _number(amount, "en", grouped=rng.random() < 0.7)
        return rng.choice([f"{number} {CURRENCY_NAMES[currency]['en']}", f"{CURRENCY_PREFIXES[currency]}{number}",
                           f"{currency}{number}"])
    number = _number(amount, language)
    return rng.choice([f"{number} {currency}", f"{number} {CURRENCIES[currency]}",
                       f"{number} {CURRENCY_NAMES[currency][language]}"])


def _smudge(rng: random.Random, word: str) -> str:
    """`word` as a poor scan reads it: confusable letters swapped, stray spaces."""
    out = []
    for ch in word:
        out.append(_OCR_CONFUSIONS.get(ch, ch) if rng.random() < 0.2 else ch)
        if ch != " " and rng.random() < 0.1:
            out.append(" ")
    return "".join(out).rstrip()


def _other_reference(rng: random.Random, prefix: str, avoid: str) -> str:
    """A distractor reference like CN-12345 or another INV-#####, never equal to `avoid`."""
    while True:
        ref = f"{prefix}-{rng.randint(10000, 99999)}"
        if ref != avoid:
            return ref


def make_shifted_document(rng: random.Random, index: int) -> Document:
    """One shifted invoice: gold drawn as in the main set, rendered in one of `SHIFTED_LAYOUTS`."""
    vendor = rng.choice(VENDORS)
    currency = rng.choice(list(CURRENCIES))
    issued = date(2024, 1, 1) + timedelta(days=rng.randrange(365))
    subtotal = round(rng.uniform(20, 20000), 2)
    rate = rng.choice([0, 5, 19, 20])
    vat = round(subtotal * rate / 100, 2)
    total = round(subtotal + vat, 2)
    number = f"INV-{rng.randint(10000, 99999)}"
    credit_note = _other_reference(rng, "CN", number)
    old_invoice = _other_reference(rng, "INV", number)
    previous = round(rng.uniform(10, 5000), 2)
    named = rng.choice(ALIASES[vendor]) if rng.random() < 0.6 else vendor
    layout = rng.choice(SHIFTED_LAYOUTS)
    if layout == "remittance":
        text = (f"Subject: Remittance advice RA-{rng.randint(100000, 999999)}\n\nTo: {named}, accounts receivable\n"
                f"We have today paid {_shifted_money(rng, total, currency)} in settlement of your invoice {number} "
                f"of {_shifted_date_text(rng, issued)} (VAT included: {_shifted_money(rng, vat, currency)}). "
                f"Your credit note {credit_note} for {_shifted_money(rng, previous, currency)} was offset against an "
                f"earlier payment.\nValue date: {_shifted_date_text(rng, issued + timedelta(days=rng.randint(5, 40)))}")
    elif layout == "key_value":
        lines = [f"Supplier: {named}", f"Document no.: {number}", f"Issue date: {_shifted_date_text(rng, issued)}",
                 f"Currency: {rng.choice([currency, CURRENCY_NAMES[currency]['en']])}",
                 f"Amount payable: {_number(total, 'en', rng.random() < 0.7)}", f"VAT {rate}%: {_number(vat, 'en')}",
                 f"Previous balance: {_number(previous, 'en')} (settled)", f"Credit note: {credit_note}"]
        rng.shuffle(lines)
        text = "\n".join(lines)
    elif layout == "ocr":
        sep = rng.choice([" ¦ ", " :: ", " ~ ", " |: "])
        parts = [f"[scan p.1/1] {named}", f"{_smudge(rng, 'Invoice')} # {number}",
                 f"{_smudge(rng, 'issued')} {_shifted_date_text(rng, issued)}",
                 f"{_smudge(rng, 'prev. balance')} {_shifted_money(rng, previous, currency)}",
                 f"{_smudge(rng, 'VAT')} {_shifted_money(rng, vat, currency)}",
                 f"{_smudge(rng, 'BALANCE DUE')} {_shifted_money(rng, total, currency)}"]
        text = sep.join(parts) + rng.choice(["", " ..", " ,,'", " ¬"])
    elif layout == "forwarded":
        sent = _shifted_date_text(rng, issued + timedelta(days=rng.randint(1, 6)))
        text = (f"FYI, can you book this one? The old one was cancelled.\n\n---------- Forwarded message ----------\n"
                f"From: {named} <billing@{vendor.split()[0].lower()}.example>\nSent: {sent}\n"
                f"Subject: Corrected invoice {number}\n\n> Hello,\n> please find attached our corrected invoice "
                f"{number} dated {_shifted_date_text(rng, issued)}, which replaces invoice {old_invoice}.\n"
                f"> Amount due: {_shifted_money(rng, total, currency)} (of which VAT "
                f"{_shifted_money(rng, vat, currency)})\n> The previous balance of "
                f"{_shifted_money(rng, previous, currency)} is already settled, thank you.")
    elif layout == "german":
        text = (f"{named}\nRechnung Nr. {number}\nRechnungsdatum: {_shifted_date_text(rng, issued, 'de')}\n"
                f"Kundennr.: KD-{rng.randint(1000, 9999)}\n"
                f"Nettobetrag: {_shifted_money(rng, subtotal, currency, 'de')}\n"
                f"MwSt. {rate} %: {_shifted_money(rng, vat, currency, 'de')}\n"
                f"Rechnungsbetrag: {_shifted_money(rng, total, currency, 'de')}\n"
                f"Zahlbar bis {_shifted_date_text(rng, issued + timedelta(days=14), 'de')} ohne Abzug.")
    else:
        text = (f"Facture n° {number}\nÉmetteur : {named}\n"
                f"Date de facturation : {_shifted_date_text(rng, issued, 'fr')}\n"
                f"Montant HT : {_shifted_money(rng, subtotal, currency, 'fr')}\n"
                f"TVA ({rate} %) : {_shifted_money(rng, vat, currency, 'fr')}\n"
                f"Total TTC : {_shifted_money(rng, total, currency, 'fr')}\n"
                f"Avoir {credit_note} de {_shifted_money(rng, previous, currency, 'fr')} déjà déduit.")
    label = _label(number, vendor, issued, total, currency)
    return Document(f"sdoc-{index:04d}", text, label)


def generate_shifted_documents(n: int = 100, seed: int = 13) -> list[Document]:
    """`n` shifted invoices (prefix-stable: the first k of `n` are those of `n=k`). Same seed, same documents."""
    rng = random.Random(seed)
    return [make_shifted_document(rng, i) for i in range(n)]
