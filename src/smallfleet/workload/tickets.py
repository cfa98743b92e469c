"""Reproducible support-ticket workload with gold labels (category, urgency, product).

How it is generated (fixed seed, pure Python `random`): pick a gold label, then write the ticket
from one of several templates for that category, filling product names (with aliases), urgency
cues (explicit words, deadlines, business impact, or none), and noise: greetings, signatures,
order numbers, irrelevant chatter, typos, odd casing. About 15% of tickets are deliberately
ambiguous: they also mention a second category's topic, or carry mixed urgency cues; the gold label
is the writer's main intent. Same seed, same tickets, on every machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

CATEGORIES = ("billing", "technical", "account", "shipping", "other")
URGENCIES = ("low", "medium", "high")
PRODUCTS = {
    "mobile app": ["mobile app", "iOS app", "Android app", "the app on my phone"],
    "web dashboard": ["web dashboard", "dashboard", "web portal", "admin console"],
    "api": ["API", "REST API", "api endpoint", "developer API"],
    "router": ["X200 router", "router", "wifi router", "the X200"],
    "thermostat": ["smart thermostat", "thermostat", "Nest-style thermostat", "heating controller"],
    "subscription": ["subscription", "premium plan", "monthly plan", "membership"],
    "headphones": ["headphones", "wireless earbuds", "ANC headphones", "headset"],
    "gift card": ["gift card", "voucher", "gift voucher", "store credit card"],
}

SCHEMA = {
    "type": "object",
    "properties": {
        "category": {"enum": list(CATEGORIES)},
        "urgency": {"enum": list(URGENCIES)},
        "product": {"enum": list(PRODUCTS)},
    },
    "required": ["category", "urgency", "product"],
    "additionalProperties": False,
}

INSTRUCTIONS = (
    "You triage customer support tickets. Read the ticket and answer with its category "
    f"({', '.join(CATEGORIES)}), its urgency ({', '.join(URGENCIES)}) and the product it is about "
    f"({', '.join(PRODUCTS)})."
)

TEMPLATES = {
    "billing": [
        "I was charged twice for my {p} this month. {u}",
        "My card was billed {amount} for the {p} but I cancelled last week. {u}",
        "Can I get a refund for the {p}? The invoice shows the wrong amount. {u}",
        "Why did the price of my {p} go up without notice? {u}",
        "The payment for my {p} failed but the money left my account. {u}",
    ],
    "technical": [
        "The {p} keeps crashing when I open settings. {u}",
        "I get an error 500 every time I use the {p}. {u}",
        "Since the last update the {p} does not connect anymore. {u}",
        "The {p} is extremely slow and sometimes freezes. {u}",
        "My {p} shows a blank screen after login. {u}",
    ],
    "account": [
        "I can't log in to my account for the {p}, password reset never arrives. {u}",
        "Please change the email address on my account, I use it for the {p}. {u}",
        "How do I delete my account? I no longer use the {p}. {u}",
        "My account got locked after a few tries on the {p}. {u}",
        "I need to add a second user to my {p} account. {u}",
    ],
    "shipping": [
        "My {p} order {order} still hasn't arrived after two weeks. {u}",
        "The {p} arrived damaged, the box was crushed. {u}",
        "Tracking for my {p} says delivered but I have nothing. {u}",
        "Can you ship the {p} to a different address? Order {order}. {u}",
        "I received the wrong item instead of my {p}. {u}",
    ],
    "other": [
        "Do you have a student discount on the {p}? {u}",
        "Just wanted to say the {p} is great, thanks! {u}",
        "Is the {p} available in other colours? {u}",
        "What are your opening hours? I have a question about the {p}. {u}",
        "Can I recommend the {p} to my company, do you do bulk deals? {u}",
    ],
}

URGENCY_CUES = {
    "low": ["No rush.", "Whenever you get a chance.", "Not urgent at all.", "Just curious.", ""],
    "medium": ["Please look into it this week.", "Would appreciate a reply soon.", "It's getting annoying.",
               "Please help when you can, it matters to me.", ""],
    "high": ["URGENT, please fix ASAP!", "This is blocking our whole team right now.",
             "We are losing money every hour, need help immediately.", "Production is down!!",
             "I need this solved today, it's critical."],
}

GREETINGS = ["Hi,", "Hello team,", "Dear support,", "hey", "Good morning,", "", "", ""]
SIGNOFFS = ["Thanks, Anna", "Regards, M. Chen", "-- sent from my phone", "Cheers", "", "", "Best, J."]
CHATTER = ["I've been a customer for years.", "My colleague had the same problem.", "Hope you're well.",
           "I already tried turning it off and on.", "Sorry for the long message.", ""]


@dataclass(frozen=True)
class Ticket:
    id: str
    text: str
    label: dict[str, str]
    ambiguous: bool


def _typo(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    i = rng.randrange(len(words))
    w = words[i]
    if len(w) > 3:
        j = rng.randrange(len(w) - 1)
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)


def _gold(rng: random.Random) -> tuple[str, str, str]:
    """A gold label: category, urgency (weighted), product."""
    return rng.choice(CATEGORIES), rng.choices(URGENCIES, weights=(4, 4, 3))[0], rng.choice(list(PRODUCTS))


def make_ticket(rng: random.Random, index: int) -> Ticket:
    category, urgency, product = _gold(rng)
    body = rng.choice(TEMPLATES[category]).format(
        p=rng.choice(PRODUCTS[product]), u=rng.choice(URGENCY_CUES[urgency]),
        amount=f"${rng.randint(5, 300)}.{rng.randint(0, 99):02d}", order=f"#{rng.randint(10000, 99999)}")
    ambiguous = rng.random() < 0.15
    if ambiguous:
        other = rng.choice([c for c in CATEGORIES if c != category])
        aside = rng.choice(TEMPLATES[other]).format(p="account", u="", amount="$10.00", order="#12345")
        body += " Also, unrelated: " + aside.strip()
    parts = [rng.choice(GREETINGS), rng.choice(CHATTER) if rng.random() < 0.4 else "", body,
             rng.choice(SIGNOFFS)]
    text = " ".join(p for p in parts if p).strip()
    if rng.random() < 0.3:
        text = _typo(rng, text)
    if rng.random() < 0.1:
        text = text.lower()
    return Ticket(f"t{index:04d}", text, {"category": category, "urgency": urgency, "product": product}, ambiguous)


# The most tickets the demo and the simulated teacher use (the generator is prefix-stable: the first n of
# `generate_tickets(POOL)` are `generate_tickets(n)`; texts are unique up to this size, which a test checks).
POOL = 2000


def generate_tickets(n: int = 500, seed: int = 7) -> list[Ticket]:
    rng = random.Random(seed)
    return [make_ticket(rng, i) for i in range(n)]


# The shifted part of the workload: phrasings, product aliases and urgency cues that never occur in
# `generate_tickets`, with heavier noise. A specialist trained on the templates above is tested on
# these to show how much it learnt the task rather than the templates.
SHIFTED_TEMPLATES = {
    "billing": ["there's a double charge on my statement for the {p} {u}",
                "you took money twice for {p}, want it back. {u}",
                "bank shows a {amount} debit from you for the {p} that I never agreed to {u}"],
    "technical": ["{p} just stops responding after a few minutes {u}",
                  "whenever I tap sync on the {p} it throws an exception {u}",
                  "{p} won't pair / connect no matter what I try {u}"],
    "account": ["locked out of my profile for the {p}, reset mail goes nowhere {u}",
                "pls transfer ownership of my {p} login to my coworker {u}",
                "want my profile and data for the {p} removed for good {u}"],
    "shipping": ["parcel with my {p} is stuck in transit, ref {order} {u}",
                 "courier left the {p} at the wrong house {u}",
                 "the {p} box came open and pieces are missing {u}"],
    "other": ["any plans to make the {p} in white? {u}",
              "who do I talk to about a partnership involving the {p}? {u}",
              "love the {p}, that's all {u}"],
}
SHIFTED_ALIASES = {
    "mobile app": ["handset app", "phone application"], "web dashboard": ["control panel", "browser portal"],
    "api": ["webhook endpoint", "integration API"], "router": ["wireless hub", "mesh base station"],
    "thermostat": ["climate unit", "heating panel"], "subscription": ["yearly plan", "pro tier"],
    "headphones": ["earphones", "over-ear cans"], "gift card": ["e-gift", "present card"],
}
SHIFTED_URGENCY = {
    "low": ["take your time", "only asking", ""],
    "medium": ["a reply in the next days would be nice", "kind of bothering me", ""],
    "high": ["our shop can't sell anything until this works", "everyone here is blocked, fix now", "EMERGENCY"],
}


def make_shifted_ticket(rng: random.Random, index: int) -> Ticket:
    category, urgency, product = _gold(rng)
    text = rng.choice(SHIFTED_TEMPLATES[category]).format(
        p=rng.choice(SHIFTED_ALIASES[product]), u=rng.choice(SHIFTED_URGENCY[urgency]),
        amount=f"EUR {rng.randint(5, 300)},{rng.randint(0, 99):02d}", order=f"{rng.randint(100000, 999999)}-X")
    for _ in range(rng.choice((1, 2))):
        text = _typo(rng, text)
    if rng.random() < 0.2:
        text = text.upper()
    return Ticket(f"s{index:04d}", text.strip(), {"category": category, "urgency": urgency, "product": product}, False)


def generate_shifted_tickets(n: int = 100, seed: int = 11) -> list[Ticket]:
    rng = random.Random(seed)
    return [make_shifted_ticket(rng, i) for i in range(n)]
