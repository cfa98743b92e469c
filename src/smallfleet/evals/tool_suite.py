"""The project's tool-calling suite: 60+ cases in four categories, scored on names and arguments.

Categories:
- `single`: one tool offered, the request needs it;
- `choose`: six tools offered, the request needs one of them;
- `parallel`: six tools offered, the request needs two calls;
- `irrelevant`: six tools offered, the request needs none (the right answer is plain text).

A call is correct when its name matches and every expected argument has the expected value
(strings compared case-insensitively, trimmed; numbers by value). Parallel cases must match as
a set. Written for smallfleet; the intents and wordings are our own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from smallfleet.constrain.spec import ToolSpec

Category = Literal["single", "choose", "parallel", "irrelevant"]


def _params(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


TOOLS: dict[str, ToolSpec] = {t.name: t for t in [
    ToolSpec("get_weather", "Get the current weather for a city",
             _params({"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}}, ["city"])),
    ToolSpec("send_email", "Send an email to one recipient",
             _params({"to": {"type": "string", "format": "email"}, "subject": {"type": "string", "maxLength": 80},
                      "body": {"type": "string", "maxLength": 300}}, ["to", "subject", "body"])),
    ToolSpec("create_ticket", "Open a support ticket",
             _params({"title": {"type": "string", "maxLength": 80}, "priority": {"enum": ["low", "medium", "high"]}},
                     ["title", "priority"])),
    ToolSpec("get_stock_price", "Get the latest price of a stock by ticker symbol",
             _params({"symbol": {"type": "string", "pattern": "^[A-Z]{1,5}$"}}, ["symbol"])),
    ToolSpec("convert_currency", "Convert an amount between currencies",
             _params({"amount": {"type": "number", "minimum": 0}, "from_currency": {"type": "string",
                      "pattern": "^[A-Z]{3}$"}, "to_currency": {"type": "string", "pattern": "^[A-Z]{3}$"}},
                     ["amount", "from_currency", "to_currency"])),
    ToolSpec("lookup_order", "Look up an order by its number",
             _params({"order_id": {"type": "integer", "minimum": 1}}, ["order_id"])),
    ToolSpec("set_reminder", "Set a reminder at a time of day",
             _params({"text": {"type": "string", "maxLength": 80}, "time": {"type": "string",
                      "pattern": "^[0-2][0-9]:[0-5][0-9]$"}}, ["text", "time"])),
    ToolSpec("translate", "Translate text into another language",
             _params({"text": {"type": "string", "maxLength": 200}, "target_language": {"enum": [
                 "french", "spanish", "german", "italian", "japanese"]}}, ["text", "target_language"])),
    ToolSpec("search_products", "Search the product catalogue",
             _params({"query": {"type": "string", "maxLength": 60}, "max_price": {"type": "number", "minimum": 0}},
                     ["query"])),
    ToolSpec("get_time", "Get the current time in a time zone",
             _params({"timezone": {"type": "string", "maxLength": 40}}, ["timezone"])),
]}


@dataclass(frozen=True)
class Expected:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolCase:
    name: str
    category: Category
    request: str
    tools: tuple[str, ...]
    expected: tuple[Expected, ...] = field(default_factory=tuple)


# (request, expected call) pairs for the single-intent cases.
INTENTS: list[tuple[str, Expected]] = [
    ("What's the weather like in Paris right now?", Expected("get_weather", {"city": "Paris"})),
    ("Is it cold in Oslo today? Give me fahrenheit.", Expected("get_weather", {"city": "Oslo", "unit": "fahrenheit"})),
    ("Tell me the weather in Tokyo.", Expected("get_weather", {"city": "Tokyo"})),
    ("Email bob@example.com with subject 'Lunch' and say 'See you at noon'.",
     Expected("send_email", {"to": "bob@example.com", "subject": "Lunch", "body": "See you at noon"})),
    ("Send ana@corp.io an email titled 'Report' saying 'The report is attached'.",
     Expected("send_email", {"to": "ana@corp.io", "subject": "Report", "body": "The report is attached"})),
    ("Open a high priority ticket: checkout page is down.", Expected("create_ticket", {"priority": "high"})),
    ("Please file a low priority ticket about a typo on the pricing page.",
     Expected("create_ticket", {"priority": "low"})),
    ("What is Apple's stock price? The ticker is AAPL.", Expected("get_stock_price", {"symbol": "AAPL"})),
    ("How much is MSFT trading at?", Expected("get_stock_price", {"symbol": "MSFT"})),
    ("Convert 100 USD to EUR.", Expected("convert_currency", {"amount": 100, "from_currency": "USD",
                                                              "to_currency": "EUR"})),
    ("How many yen is 50 GBP? Use JPY.", Expected("convert_currency", {"amount": 50, "from_currency": "GBP",
                                                                       "to_currency": "JPY"})),
    ("Where is my order 48213?", Expected("lookup_order", {"order_id": 48213})),
    ("Check the status of order number 77.", Expected("lookup_order", {"order_id": 77})),
    ("Remind me to call mom at 18:30.", Expected("set_reminder", {"time": "18:30"})),
    ("Set a reminder for 07:00 to take my pills.", Expected("set_reminder", {"time": "07:00"})),
    ("Translate 'good night' into Spanish.", Expected("translate", {"text": "good night",
                                                                    "target_language": "spanish"})),
    ("How do you say 'thank you' in Japanese?", Expected("translate", {"target_language": "japanese"})),
    ("Find me wireless headphones under 100 dollars.", Expected("search_products", {"max_price": 100})),
    ("Search the catalogue for yoga mats.", Expected("search_products", {})),
    ("What time is it in Europe/Berlin?", Expected("get_time", {"timezone": "Europe/Berlin"})),
]

IRRELEVANT: list[str] = [
    "Tell me a joke about cats.",
    "What is the capital of Italy?",
    "Write a haiku about autumn.",
    "Explain what photosynthesis is in one sentence.",
    "Hi! How are you today?",
    "What does 'ephemeral' mean?",
    "Give me a tip for better sleep.",
    "Who wrote Romeo and Juliet?",
    "Summarise the idea of supply and demand.",
    "What is 12 times 12?",
    "Recommend a good name for a puppy.",
    "Why do leaves change colour in autumn?",
    "Thanks, that's all for now.",
    "What's your favourite colour?",
    "Describe the ocean in three words.",
]

CHOICE_SET = ("get_weather", "send_email", "create_ticket", "get_stock_price", "convert_currency", "lookup_order",
              "set_reminder", "translate", "search_products", "get_time")


def _menu(must: list[str], size: int = 6) -> tuple[str, ...]:
    """`must` plus other tools up to `size`, in a fixed order."""
    others = [t for t in CHOICE_SET if t not in must]
    return tuple(sorted(must + others[: size - len(must)]))


def build_cases() -> list[ToolCase]:
    cases: list[ToolCase] = []
    for i, (request, exp) in enumerate(INTENTS[:15]):
        cases.append(ToolCase(f"single_{i:02d}", "single", request, (exp.name,), (exp,)))
    for i, (request, exp) in enumerate(INTENTS[5:20]):
        cases.append(ToolCase(f"choose_{i:02d}", "choose", request, _menu([exp.name]), (exp,)))
    for i in range(15):
        (r1, e1), (r2, e2) = INTENTS[i], INTENTS[(i * 7 + 3) % len(INTENTS)]
        if e1.name == e2.name:
            (r2, e2) = INTENTS[(i * 7 + 4) % len(INTENTS)]
        request = f"{r1.rstrip('.?!')}, and also: {r2[0].lower()}{r2[1:]}"
        cases.append(ToolCase(f"parallel_{i:02d}", "parallel", request, _menu([e1.name, e2.name]), (e1, e2)))
    for i, request in enumerate(IRRELEVANT):
        cases.append(ToolCase(f"irrelevant_{i:02d}", "irrelevant", request, _menu([CHOICE_SET[i % 10]])))
    return cases


def _same(expected: Any, got: Any) -> bool:
    if isinstance(expected, str) and isinstance(got, str):
        return expected.strip().lower() == got.strip().lower()
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return float(expected) == float(got)
    return bool(expected == got)


def call_matches(expected: Expected, name: str, arguments: dict[str, Any]) -> bool:
    return name == expected.name and all(k in arguments and _same(v, arguments[k])
                                         for k, v in expected.arguments.items())


def score(case: ToolCase, calls: list[tuple[str, dict[str, Any]]]) -> bool:
    """Whether the calls made (name, arguments) are exactly the right ones for `case`."""
    if case.category == "irrelevant":
        return not calls
    if len(calls) != len(case.expected):
        return False
    remaining = list(calls)
    for exp in case.expected:
        hit = next((c for c in remaining if call_matches(exp, c[0], c[1])), None)
        if hit is None:
            return False
        remaining.remove(hit)
    return True


ALL_TOOL_CASES: list[ToolCase] = build_cases()
