"""The tools of the support workflow (`bench workflow`): a deterministic, made-up back office.

Every answer is a pure function of its arguments (a hash picks the customer, orders and plans), so runs
are reproducible and the tools cost microseconds: the benchmark measures the models and the gateway.
"""

from __future__ import annotations

import hashlib
from typing import Any

PLANS = ("basic", "pro", "enterprise")
STATUSES = ("delivered", "in_transit", "late", "returned")
TEAMS = ("billing-desk", "tech-support", "logistics", "account-security")
ARTICLES = {
    "billing": "How refunds and double charges are handled",
    "technical": "Troubleshooting connection and login problems",
    "account": "Recovering and securing your account",
    "shipping": "Tracking a parcel and reporting a late delivery",
    "other": "Contacting support",
}


def _pick(text: str, salt: str, n: int) -> int:
    return int(hashlib.sha256(f"{salt}:{text}".encode()).hexdigest()[:8], 16) % n


def lookup_customer(text: str) -> dict[str, Any]:
    """The customer who wrote the ticket."""
    number = _pick(text, "customer", 90000) + 10000
    return {"customer_id": f"C-{number}", "plan": PLANS[_pick(text, "plan", 3)],
            "tenure_years": _pick(text, "tenure", 9) + 1}


def lookup_orders(customer_id: str) -> list[dict[str, Any]]:
    """The customer's recent orders."""
    count = _pick(customer_id, "orders", 3) + 1
    return [{"order_id": f"O-{_pick(customer_id, f'o{i}', 90000) + 10000}",
             "status": STATUSES[_pick(customer_id, f's{i}', 4)],
             "total": round(10 + _pick(customer_id, f't{i}', 49000) / 100, 2)} for i in range(count)]


def refund_policy(plan: str, category: str) -> dict[str, Any]:
    """Whether a refund is allowed for this plan and kind of problem, and within how many days."""
    allowed = category in ("billing", "shipping") or plan == "enterprise"
    return {"refund_allowed": allowed, "within_days": 60 if plan == "enterprise" else 30}


def sla_hours(urgency: str, plan: str) -> int:
    """The response time promised to this customer for this urgency."""
    base = {"high": 4, "medium": 24, "low": 72}.get(urgency, 72)
    return max(1, base // 2) if plan == "enterprise" else base


def kb_search(category: str, product: str) -> dict[str, str]:
    """The help article that fits the ticket."""
    return {"title": ARTICLES.get(category, ARTICLES["other"]), "product": product}


def priority(urgency: str, sentiment: str, plan: str) -> int:
    """A queue priority from 1 (first) to 5."""
    score = {"high": 0, "medium": 1, "low": 2}.get(urgency, 2) + (0 if sentiment == "negative" else 1)
    return max(1, min(5, score + (0 if plan == "enterprise" else 1)))


def reply_checks(reply: str) -> dict[str, Any]:
    """Simple checks of a drafted reply: length, greeting, a promise we cannot make."""
    lowered = reply.lower()
    return {"words": len(reply.split()), "greets": lowered.startswith(("hi", "hello", "dear")),
            "promises_refund": "refund" in lowered and "will" in lowered}
