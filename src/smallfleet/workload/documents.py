"""Reproducible invoice documents with gold fields (invoice number, vendor, date, total, currency).

How it is generated (fixed seed): pick the gold record, then render it in one of several layouts —
a formal invoice header, an accounts-payable email, a one-line bank-style memo, an OCR'd scan with
broken spacing — with the date in varied formats (ISO in the gold label), totals with currency
symbols or codes and thousands separators, and distractors (a PO number, a subtotal and tax line,
a due date) that a careless extractor would pick instead. Same seed, same documents.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

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
    label = {"invoice_number": number, "vendor": vendor, "date": issued.isoformat(), "total": total,
             "currency": currency}
    return Document(f"d{index:04d}", text, label)


def generate_documents(n: int = 300, seed: int = 11) -> list[Document]:
    rng = random.Random(seed)
    return [make_document(rng, i) for i in range(n)]
