"""SIMULATION: a stand-in for a large remote "teacher" model, answering from the workload's gold labels.

It is an OpenAI-compatible server (the same bare ASGI app as `fake_upstream`) that looks up the
request's last user message in the reference workload and answers with the gold label as JSON,
correct with probability `accuracy` (decided per item by a hash, so it is reproducible) and
otherwise with one field changed to another valid value. It has a fixed latency and reports token
usage, so cost accounting works. It is not a language model and measures nothing about one; the
same ladder works against a real remote model by changing only the fleet file.

Run: `python -m smallfleet.sim.teacher --port 9100 --accuracy 0.97`
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smallfleet.evals.fake_upstream import FakeUpstream
from smallfleet.workload.documents import CURRENCIES, VENDORS, generate_documents
from smallfleet.workload.tickets import CATEGORIES, PRODUCTS, URGENCIES, generate_shifted_tickets, generate_tickets

ALTERNATIVES: dict[str, list[Any]] = {"category": list(CATEGORIES), "urgency": list(URGENCIES),
                                      "product": list(PRODUCTS), "vendor": VENDORS, "currency": list(CURRENCIES)}


def _fraction(key: str) -> float:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


@dataclass
class TeacherOracle:
    """Maps an input text to the (possibly corrupted) gold answer."""

    labels: Mapping[str, Mapping[str, Any]]
    accuracy: float = 0.97

    def answer(self, text: str, fields: list[str] | None = None) -> dict[str, Any] | None:
        """The answer for `text`, restricted to `fields` when the caller's schema asks for fewer."""
        gold = self.labels.get(text.strip())
        if gold is None:
            return None
        if fields:
            gold = {k: v for k, v in gold.items() if k in fields}
        if _fraction("correct:" + text) < self.accuracy:
            return dict(gold)
        wrong = dict(gold)
        field = next((f for f in ALTERNATIVES if f in gold), None)
        if field is not None:
            options = [v for v in ALTERNATIVES[field] if v != gold[field]]
            wrong[field] = options[int(_fraction("field:" + text) * len(options)) % len(options)]
        return wrong

    def __call__(self, request: dict[str, Any]) -> str:
        messages = request.get("messages") or []
        text = next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")
        schema = ((request.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
        answer = self.answer(text, list(schema.get("properties", {})) or None)
        return json.dumps(answer) if answer is not None else json.dumps({"error": "unknown input"})


def reference_labels(tickets: int = 500, documents: int = 300) -> dict[str, dict[str, Any]]:
    labels: dict[str, dict[str, Any]] = {t.text.strip(): dict(t.label) for t in generate_tickets(tickets)}
    labels.update({t.text.strip(): dict(t.label) for t in generate_shifted_tickets(tickets)})
    labels.update({d.text.strip(): dict(d.label) for d in generate_documents(documents)})
    return labels


def teacher_app(accuracy: float = 0.97, latency_s: float = 0.05) -> FakeUpstream:
    return FakeUpstream(latency_s=latency_s, responder=TeacherOracle(reference_labels(), accuracy))


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="SIMULATED teacher model (answers from gold labels)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--accuracy", type=float, default=0.97)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    uvicorn.run(teacher_app(args.accuracy, args.latency), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
