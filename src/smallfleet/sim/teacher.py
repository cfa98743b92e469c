"""SIMULATION: a stand-in for a large remote "teacher" model, answering from the workloads' gold labels.

It is an OpenAI-compatible server (the same bare ASGI app as `fake_upstream`) that looks up the
request's last user message in the reference workloads and answers from their gold, correct with
probability `accuracy` (decided per item by a hash, so it is reproducible):

- tickets and invoices: the gold label as JSON, otherwise with one field changed to another valid value;
- agent requests (`workload.agent_tools`), when the request offers `tools`: the gold calls as
  OpenAI `tool_calls` (or the gold reply as text), otherwise a realistic mistake: a confused tool
  (the weather for the time, a ticket for an e-mail ...), one argument changed to another
  schema-valid value, the second of two calls left out, or a stray call where no tool was needed.
  Like a real server it calls only offered tools and makes one call when `parallel_tool_calls` is
  false; `tool_choice` is not simulated.

It has a fixed latency and reports token usage, so cost accounting works. It is not a language
model and measures nothing about one; the same ladder works against a real remote model by
changing only the fleet file.

Run: `python -m smallfleet.sim.teacher --port 9100 --accuracy 0.97`
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from smallfleet.evals.fake_upstream import FakeUpstream, Reply
from smallfleet.workload import agent_tools
from smallfleet.workload.agent_tools import AgentRequest, Call
from smallfleet.workload.documents import CURRENCIES, VENDORS, generate_documents, generate_shifted_documents
from smallfleet.workload.documents import POOL as DOCUMENT_POOL
from smallfleet.workload.tickets import CATEGORIES, PRODUCTS, URGENCIES, generate_shifted_tickets, generate_tickets
from smallfleet.workload.tickets import POOL as TICKET_POOL

ALTERNATIVES: dict[str, list[Any]] = {"category": list(CATEGORIES), "urgency": list(URGENCIES),
                                      "product": list(PRODUCTS), "vendor": VENDORS, "currency": list(CURRENCIES)}


def _fraction(key: str) -> float:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


@dataclass
class TeacherOracle:
    """Maps an input text to the (possibly corrupted) gold answer."""

    labels: Mapping[str, Mapping[str, Any]]
    accuracy: float = 0.97
    agent: AgentOracle | None = None  # answers the requests that offer tools (the agent-step workload)

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

    def __call__(self, request: dict[str, Any]) -> Reply:
        if request.get("tools") and self.agent is not None:
            return self.agent(request)
        text = _last_user_text(request)
        schema = ((request.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
        answer = self.answer(text, list(schema.get("properties", {})) or None)
        return json.dumps(answer) if answer is not None else json.dumps({"error": "unknown input"})


def _last_user_text(request: dict[str, Any]) -> str:
    messages = request.get("messages") or []
    return next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")


def _pick(options: list[Any], key: str) -> Any:
    return options[int(_fraction(key) * len(options)) % len(options)]


# A tool a model plausibly calls instead of the right one, with arguments taken from the right call.
CONFUSIONS: dict[str, Callable[[dict[str, Any]], Call]] = {
    "get_weather": lambda a: ("get_time", {"timezone": a["city"]}),
    "get_time": lambda a: ("get_weather", {"city": a["timezone"].split("/")[-1].replace("_", " ")}),
    "send_email": lambda a: ("create_ticket", {"title": a["subject"], "priority": "medium"}),
    "create_ticket": lambda a: ("set_reminder", {"text": a["title"], "time": "09:00"}),
    "get_stock_price": lambda a: ("search_products", {"query": a["symbol"]}),
    "convert_currency": lambda a: ("get_stock_price", {"symbol": a["from_currency"]}),
    "lookup_order": lambda a: ("create_ticket", {"title": f"order {a['order_id']}", "priority": "medium"}),
    "set_reminder": lambda a: ("create_ticket", {"title": a["text"], "priority": "low"}),
}
_POOLS: dict[str, list[Any]] = {"city": list(agent_tools.CITIES), "unit": ["celsius", "fahrenheit"],
                                "priority": list(agent_tools.PRIORITIES), "symbol": list(agent_tools.TICKERS),
                                "target_language": list(agent_tools.LANGUAGES), "timezone": list(agent_tools.ZONES)}


def _altered(args: dict[str, Any], key: str) -> dict[str, Any]:
    """`args` with one argument changed to another value its schema allows (or an optional one left out)."""
    out = dict(args)
    name = _pick(sorted(args), "argument:" + key)
    value = args[name]
    if name in _POOLS:
        out[name] = _pick([v for v in _POOLS[name] if str(v).lower() != str(value).lower()], "value:" + key)
    elif name in ("from_currency", "to_currency"):  # the direction mixed up
        out["from_currency"], out["to_currency"] = args["to_currency"], args["from_currency"]
    elif name == "to":
        person = _pick([p for p in agent_tools.PEOPLE if not value.startswith(p + "@")], "value:" + key)
        out[name] = person + value[value.index("@"):]
    elif name == "amount":
        out[name] = round(value * 10, 2)  # a slipped decimal point
    elif name == "order_id":
        digits = str(value)
        swapped = digits[:-2] + digits[-1] + digits[-2]
        out[name] = int(swapped) if swapped != digits and int(swapped) >= 1 else value + 1
    elif name == "time":
        hour, minute = value.split(":")
        out[name] = f"{(int(hour) + 12) % 24:02d}:{minute}"  # morning and evening mixed up
    elif name == "max_price":
        del out[name]  # the budget forgotten
    else:  # free text (subject, body, title, reminder text, phrase, query): cut short, or padded
        words = str(value).split(" ")
        out[name] = " ".join(words[:-1]) if len(words) > 1 else "remember to " + value
    return out


def _stray_call(text: str, offered: Collection[str]) -> list[Call] | None:
    """A call where none was needed: the request searched for, filed or translated. None if none is offered."""
    text = text.strip()
    candidates: list[Call] = [("search_products", {"query": text[:60].strip()}),
                              ("create_ticket", {"title": text[:80].strip(), "priority": "low"}),
                              ("translate", {"text": text[:200].strip(), "target_language": "french"})]
    return next(([c] for c in candidates if c[0] in offered), None)


@dataclass
class AgentOracle:
    """SIMULATED teacher for the agent-step workload: gold calls or gold reply, wrong `1 - accuracy` of the time."""

    requests: Mapping[str, AgentRequest]
    accuracy: float = 0.97

    def correct(self, text: str) -> bool:
        """Whether the teacher gets this request right (reproducibly, by a hash of the text)."""
        return _fraction("correct:" + text.strip()) < self.accuracy

    def answer(self, text: str, offered: Collection[str] | None = None,
               parallel: bool = True) -> list[Call] | str | None:
        """The calls, or the text, the teacher answers `text` with; None when the text is not a known request."""
        req = self.requests.get(text.strip())
        if req is None:
            return None
        offered = set(offered) if offered else {t.name for t in agent_tools.AGENT_TOOLS}
        answer: list[Call] | str = list(req.calls) or req.reply
        if not self.correct(text):
            answer = self._mistake(req, offered)
        if isinstance(answer, list):
            if any(name not in offered for name, _ in answer):
                return "Sorry, I have no tool for that."
            return answer if parallel else answer[:1]
        return answer

    @staticmethod
    def _mistake(req: AgentRequest, offered: Collection[str]) -> list[Call] | str:
        key = req.text.strip()
        if not req.calls:
            return _stray_call(key, offered) or req.reply
        calls = [(name, dict(args)) for name, args in req.calls]
        roll = _fraction("mistake:" + key)
        if len(calls) > 1 and roll < 0.3:
            return calls[:1]
        i = int(_fraction("call:" + key) * len(calls)) % len(calls)
        name, args = calls[i]
        confused = CONFUSIONS[name](args) if name in CONFUSIONS else None
        if confused is not None and confused[0] in offered and roll < 0.6:
            calls[i] = confused
        else:
            calls[i] = (name, _altered(args, key))
        return calls

    def __call__(self, request: dict[str, Any]) -> Reply:
        offered = [t["function"]["name"] for t in request.get("tools") or []
                   if isinstance(t, dict) and isinstance(t.get("function"), dict) and "name" in t["function"]]
        answer = self.answer(_last_user_text(request), offered, request.get("parallel_tool_calls") is not False)
        if answer is None:
            return "Sorry, I cannot help with that. (simulated teacher: unknown request)"
        if isinstance(answer, str):
            return answer
        return {"content": None, "tool_calls": [
            {"id": f"call_{i}", "type": "function",
             "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}}
            for i, (name, args) in enumerate(answer)]}


def agent_reference(requests: int = 1000, shifted: int = 300) -> dict[str, AgentRequest]:
    """The agent requests the teacher knows, by text: the first `requests` main ones and `shifted` shifted ones
    (the generators are prefix-stable, so any smaller slice of either is covered)."""
    known = {r.text.strip(): r for r in agent_tools.generate_agent_requests(requests)}
    known.update({r.text.strip(): r for r in agent_tools.generate_shifted_agent_requests(shifted)})
    return known


def reference_labels(tickets: int = TICKET_POOL, documents: int = DOCUMENT_POOL,
                     shifted: int = 500) -> dict[str, dict[str, Any]]:
    """Gold labels by text: the first `tickets` tickets and `documents` documents, `shifted` of each shifted set."""
    labels: dict[str, dict[str, Any]] = {t.text.strip(): dict(t.label) for t in generate_tickets(tickets)}
    labels.update({t.text.strip(): dict(t.label) for t in generate_shifted_tickets(shifted)})
    labels.update({d.text.strip(): dict(d.label) for d in generate_documents(documents)})
    labels.update({d.text.strip(): dict(d.label) for d in generate_shifted_documents(shifted)})
    return labels


def teacher_app(accuracy: float = 0.97, latency_s: float = 0.05) -> FakeUpstream:
    oracle = TeacherOracle(reference_labels(), accuracy, agent=AgentOracle(agent_reference(), accuracy))
    return FakeUpstream(latency_s=latency_s, responder=oracle)


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
