"""A tiny intent workload with traces as the router writes them, for every distillation stage."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
import yaml

from smallfleet.config.settings import Settings
from smallfleet.trace.record import Trace, new_trace_id
from smallfleet.trace.sqlite import SQLiteTraceStore

INTENTS = ("billing", "shipping", "login")
_WORDS = {
    "billing": ["charged twice", "refund", "invoice is wrong", "card was billed", "payment failed", "price went up"],
    "shipping": ["parcel is late", "package never arrived", "tracking number", "delivery address", "courier lost it",
                 "shipment delayed"],
    "login": ["forgot my password", "cannot sign in", "account locked", "reset link", "two-factor code",
              "login page error"],
}
_FRAMES = ["Hi, {w} again, please help", "{w}: what do I do now?", "My {w} issue is still open from {d}",
           "Urgent - {w} since {d}", "hello team, {w}. thanks", "Can someone look at this: {w} ({d})"]
_DAYS = ["monday", "tuesday", "last week", "yesterday", "march", "the weekend", "today", "sunday"]


def intent_items(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = INTENTS[i % len(INTENTS)]
        text = rng.choice(_FRAMES).format(w=rng.choice(_WORDS[label]), d=rng.choice(_DAYS))
        out.append((f"{text} #{i}", label))  # the number keeps inputs distinct
    return out


def write_fleet(home: Path, extra_contract: dict | None = None) -> Path:
    config = {"models": [{"id": "small", "kind": "fake"},
                         {"id": "teacher", "kind": "fake", "location": "remote", "price_per_1k_output": 1.0}],
              "contracts": [{"name": "intent", "instructions": "Classify the request.", "quality_target": 0.9,
                             "output": {"choice": list(INTENTS)}, "ladder": ["small", "teacher"]}]}
    if extra_contract:
        config["contracts"].append(extra_contract)
    path = home / "fleet.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def routed_trace(text: str, answer: str, contract: str = "intent", created_at: float | None = None,
                 top_valid: bool = True) -> Trace:
    """A request the small rung got wrong and the teacher answered (as the router records it)."""
    return Trace(id=new_trace_id(), created_at=created_at or time.time(), endpoint="test", model=contract,
                 contract=contract, input=text, output=answer, rung=1,
                 attempts=[{"rung": 0, "model": "small", "status": "rejected", "reason": "invalid_output",
                            "output": text, "signals": {"valid": False}},
                           {"rung": 1, "model": "teacher", "status": "accepted", "output": answer,
                            "signals": {"valid": top_valid}, "location": "remote"}])


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    home = tmp_path / "home"
    path = write_fleet(home)
    monkeypatch.setenv("SMALLFLEET_CONFIG", str(path))
    return Settings(home=home, config_path=path)


def seed(settings: Settings, items: list[tuple[str, str]], labelled_every: int = 0) -> list[Trace]:
    """Store one routed trace per item; every `labelled_every`-th also gets a gold label."""
    store = SQLiteTraceStore(settings.trace_db)
    traces = [routed_trace(text, label, created_at=1_000_000 + i) for i, (text, label) in enumerate(items)]
    try:
        store.append_many(traces)
        for i, t in enumerate(traces):
            if labelled_every and i % labelled_every == 0:
                store.add_label(t.id, items[i][1], source="gold")
    finally:
        store.close()
    return traces
