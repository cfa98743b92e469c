"""The answer cache as the router uses it: when a request may be answered from it, and what is kept.

- Requests in which the guard detects sensitive values neither read nor write the cache, unless the
  contract says `cache: {sensitive: true}`.
- The key holds the tenant (from the egress scope the API entered), the contract, the version it is
  served at (`Contract.version`: spec, specialist, rules, fleet file) and, for grounded contracts, the
  knowledge base's version; entries of another tenant or version are never looked at.
- A semantic (near) hit on a grounded contract is served only when both checks pass: this
  request retrieved the same passages as the cached one (the same set; their order may differ), so the
  answer's citations stand; and the two questions have the same key words in the same order
  (`key_words`: case, punctuation, articles, pronouns and greetings aside). The second check exists
  because the first is not enough: "convert a string to a number" and "convert a number to a string"
  retrieve the same passages, in the same order, at a cosine similarity of 0.9+ (measured: `smallfleet
  bench cache`).
- A semantic hit on a classification contract (a choice, or a JSON object of enums) is served only when
  the `agree` cached requests nearest to this one (default 3) are all at or above the threshold and all
  got the same answer (`agreeing`): one neighbour alone is not enough (see `agreeing` for the figures).
- Only an answer a rung accepted is kept (not a best effort kept after every rung failed or refused).
- A failing cache (a locked or broken SQLite file) is a miss, logged: it never fails a request.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
from dataclasses import asdict, dataclass, replace
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from smallfleet.backends.base import ChatMessage, Generation, Timings, ToolCall
from smallfleet.cache.store import AnswerCache, Entry, cache_key, canonical
from smallfleet.constrain.outcome import Outcome
from smallfleet.guard.egress import Guard
from smallfleet.guard.redact import Redaction
from smallfleet.kb.retrieve import Retrieval

if TYPE_CHECKING:
    from smallfleet.route.router import Contract, RouteResult

log = logging.getLogger("smallfleet.cache")
# Words that do not change what is asked. Not in it: negations, modal verbs ("can" vs "should"),
# prepositions ("to" vs "from"), question words: each can turn a question into another.
_FILLER = frozenset("a an the please just really i me my we our us you your hi hello hey thanks thank so ok okay "
                    "um".split())


def key_words(text: str) -> tuple[str, ...]:
    """The words of a question that decide what it asks, in order."""
    return tuple(w for w in re.findall(r"[a-z0-9_+#.'-]+", text.lower().replace("\u2019", "'"))
                 if w.strip(".'-") and w not in _FILLER)


def agreeing(neighbours: list[tuple[Entry, float]], agree: int) -> Entry | None:
    """The entry to serve for a classification near hit, or None: there must be `agree` neighbours (each already
    at or above the threshold) and their answers must be the same. Measured on CLINC150 (`smallfleet bench cache
    --clinc 1000`, 15,100 requests cached): at cosine 0.9 the nearest neighbour alone serves a wrong intent
    for 2 of its 252 hits; three agreeing neighbours, for 0 of 121."""
    if len(neighbours) < agree:
        return None
    answers = {json.dumps([e.answer.get("content"), e.answer.get("tool_calls")]) for e, _ in neighbours[:agree]}
    return neighbours[0][0] if len(answers) == 1 else None


@dataclass(frozen=True)
class CacheLookup:
    """What the cache said about one request before routing."""

    status: str  # exact | semantic | miss | sensitive | unavailable
    key: str | None = None
    tenant: str | None = None
    version: str | None = None
    entry: Entry | None = None


class AnswerCacheUse:
    """One request's use of the cache (stateless beyond the store and the guard it is given)."""

    def __init__(self, store: AnswerCache, guard: Guard) -> None:
        self.store = store
        self.guard = guard

    async def lookup(self, contract: Contract, text: str, kb_version: str | None) -> CacheLookup:
        """The exact entry for this request, if any; or why the cache is not used for it."""
        spec = contract.spec
        assert spec.cache is not None
        name = spec.name
        if not spec.cache.sensitive:
            found = Redaction()
            await self.guard.redact((ChatMessage("user", text),), found)
            if found.table:  # the guard marks it sensitive: neither served from nor written to the cache
                self._count(name, "bypass_sensitive")
                return CacheLookup("sensitive")
        tenant = self.guard.scope().tenant
        version = contract.version + (f"/kb:{kb_version}" if kb_version is not None else "")
        key = cache_key(tenant, name, version, text)
        try:
            entry = self.store.get(key)
        except sqlite3.Error as exc:
            log.error("answer cache unreadable (%s): answering without it", exc)
            return CacheLookup("unavailable")
        if entry is not None:
            self._count(name, "hit_exact")
        return CacheLookup("exact" if entry else "miss", key, tenant, version, entry)

    def near(self, contract: Contract, lookup: CacheLookup, found: Retrieval, question: str) -> CacheLookup | None:
        """A grounded contract's near hit: a near question's entry, served only if this request retrieved the same
        passages and asks with the same key words in the same order."""
        spec = contract.spec
        near = self._neighbours(contract, lookup, found.vector, 1)
        if not near:
            return None
        entry, _ = near[0]
        if set(entry.passages or ()) != set(found.ids()) or key_words(entry.input) != key_words(question):
            self._count(spec.name, "rejected_near_hit")  # similar words, a different question
            return None
        self._count(spec.name, "hit_semantic")
        return replace(lookup, status="semantic", entry=entry)

    def near_class(self, contract: Contract, lookup: CacheLookup, vector: np.ndarray | None) -> CacheLookup | None:
        """A classification contract's near hit: served only when the `agree` cached requests nearest to this one
        are all at or above the similarity threshold and were all answered alike (`agreeing`)."""
        spec = contract.spec
        assert spec.cache is not None
        near = self._neighbours(contract, lookup, vector, spec.cache.agree)
        if len(near) < spec.cache.agree:
            return None  # too few near requests yet: a plain miss
        entry = agreeing(near, spec.cache.agree)
        if entry is None:
            self._count(spec.name, "rejected_near_hit")  # near requests that were answered differently
            return None
        self._count(spec.name, "hit_semantic")
        return replace(lookup, status="semantic", entry=entry)

    def near_question(self, contract: Contract, lookup: CacheLookup, question: str,
                      encoder: Callable[[], Any]) -> tuple[np.ndarray | None, CacheLookup | None]:
        """A classification contract's question embedding and near hit (`near_class`), off the event loop (the
        caller runs it on a thread). An encoder that cannot load or fails makes it a logged miss."""
        try:
            vector = np.asarray(encoder().encode([question]))[0]
        except Exception as exc:  # noqa: BLE001 - a failing cache never fails a request
            log.error("semantic cache lookup failed (%s: %s): answering without it", type(exc).__name__, exc)
            return None, None
        return vector, self.near_class(contract, lookup, vector)

    def _neighbours(self, contract: Contract, lookup: CacheLookup, vector: np.ndarray | None,
                    k: int) -> list[tuple[Entry, float]]:
        spec = contract.spec
        if lookup.key is None or lookup.version is None or vector is None or spec.cache is None \
                or spec.cache.semantic is None:
            return []
        try:
            return self.store.nearest(lookup.tenant, spec.name, lookup.version, vector, spec.cache.semantic, k)
        except sqlite3.Error as exc:
            log.error("answer cache unreadable (%s): answering without it", exc)
            return []

    def keep(self, contract: Contract, lookup: CacheLookup, question: str, result: RouteResult,
             found: Retrieval | None, vector: np.ndarray | None = None) -> None:
        """Count the miss and keep the answer if a rung accepted it (the caller's restored answer)."""
        if lookup.key is None or lookup.version is None:
            return
        spec = contract.spec
        assert spec.cache is not None
        self._count(spec.name, "miss")
        accepted = any(a.status == "accepted" for a in result.attempts)
        if result.outcome is None or not result.outcome.valid or result.generation is None or not accepted:
            return
        restored = result.restored()
        assert restored.outcome is not None and restored.generation is not None
        answer = {"content": restored.outcome.content, "model": result.model, "rung": result.rung,
                  "confidence": result.confidence, "finish_reason": restored.generation.finish_reason,
                  "tool_calls": [asdict(c) for c in restored.outcome.tool_calls],
                  "location": next((a.location for a in result.attempts if a.rung == result.rung), "local")}
        entry = Entry(lookup.key, lookup.tenant or "", spec.name, lookup.version, canonical(question), answer,
                      tuple(found.ids()) if found is not None else None)
        if spec.cache.semantic is None:
            vector = None
        elif found is not None:
            vector = found.vector  # grounded: the question's embedding from retrieval
        try:
            self.store.put(entry, spec.cache.ttl_s, vector)
        except sqlite3.Error as exc:
            log.error("answer cache not writable (%s): the answer is not kept", exc)

    def answer(self, contract: Contract, lookup: CacheLookup, started: float) -> RouteResult:
        """The cached answer as a route result (one attempt, status `cached`; no tokens, no cost)."""
        from smallfleet.route.router import Attempt, RouteResult

        entry = lookup.entry
        assert entry is not None
        stored = entry.answer
        calls = tuple(ToolCall(**c) for c in stored.get("tool_calls", []))
        gen = Generation(model=str(stored.get("model")), text=stored.get("content") or "",
                         finish_reason=stored.get("finish_reason", "stop"), prompt_tokens=0, completion_tokens=0,
                         logprobs=(), timings=Timings(ttft_s=0.0, total_s=0.0), tool_calls=calls)
        elapsed = (time.perf_counter() - started) * 1000
        attempt = Attempt(int(stored.get("rung") or 0), str(stored.get("model")), "cached", lookup.status,
                          output=stored.get("content"), latency_ms=elapsed, location=stored.get("location", "local"))
        return RouteResult(contract.spec.name, Outcome(stored.get("content"), calls), gen, stored.get("rung"),
                           stored.get("model"), None, stored.get("confidence"), [attempt], elapsed,
                           cached=lookup.status)

    def _count(self, contract: str, event: str) -> None:
        try:
            self.store.count(contract, event)
        except sqlite3.Error as exc:
            log.error("answer cache counters not writable (%s)", exc)
