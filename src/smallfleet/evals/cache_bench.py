"""`smallfleet bench cache`: does the answer cache serve paraphrases, and never a near miss?

Over the Python FAQ knowledge base and `cache_pairs.jsonl` (100 paraphrase pairs: the same question in
other words; 100 near-miss pairs: mostly the same words, a different question), each pair runs through
a real router on a grounded contract with the answer cache on: question A is answered (a miss, stored),
then question B is asked, and whether B was served A's answer is recorded. The cache is emptied
between pairs. The rung is a scripted local model that answers at once, so the latencies are the
gateway's own (guard check, retrieval, cache) and a hit's latency can be set against a miss's.

Also recorded per pair: B's cosine similarity to A, whether B retrieved the same passages in the same
order, and whether the two have the same key words in order, so the hit and false-hit rates at other
thresholds, with each check and without, come from the same run.

The guard runs as in a gateway, with the domain's names allowed (`guard.allow`: Python, Windows, ...):
without that list spaCy tags "Python" as a place, and such requests bypass the cache as sensitive.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from smallfleet.workload.python_faq import CACHE_PAIRS, FAQ_PAGES

THRESHOLDS = (0.80, 0.85, 0.90, 0.95)
DOMAIN_NAMES = ["Python", "Perl", "Windows", "Linux", "Unix", "Mac", "macOS", "Tkinter", "CPython", "Jython",
                "IronPython", "PyPy", "Java", "C", "C++", "Tcl", "Tk", "Emacs", "PyPI", "IDLE", "Cython"]


def _pairs() -> list[dict[str, Any]]:
    """The file's pairs, plus a "restyled" pair per paraphrase pair: A as typed differently (lower case, no
    question mark, a greeting and a please), the variation an exact cache misses and a semantic one should not."""
    pairs = [p for p in (json.loads(line) for line in CACHE_PAIRS.read_text().splitlines() if line.strip())
             if "_about" not in p]
    restyled = [{"id": f"r{p['id'][1:]}", "kind": "restyled", "a": p["a"],
                 "b": f"hi, {p['a'].rstrip('?').lower()} please?"} for p in pairs if p["kind"] == "paraphrase"]
    return pairs + restyled


def run_cache_bench(threshold: float = 0.9, top_k: int = 3) -> dict[str, Any]:
    import numpy as np

    from smallfleet.backends.base import ModelInfo
    from smallfleet.backends.fake import FakeBackend, FakeReply
    from smallfleet.cache.store import AnswerCache
    from smallfleet.contracts.spec import ContractSpec
    from smallfleet.embeddings import Encoder
    from smallfleet.fleet import Fleet
    from smallfleet.guard.egress import Guard, GuardSettings
    from smallfleet.kb import grounded
    from smallfleet.kb.library import Library
    from smallfleet.kb.store import KnowledgeBase, kb_path
    from smallfleet.guard.detect import Detector
    from smallfleet.route.caching import key_words
    from smallfleet.route.router import Contract, Router

    encoder = Encoder()
    pairs = _pairs()
    with tempfile.TemporaryDirectory(prefix="smallfleet-cache-bench-") as tmp:
        home = Path(tmp)
        kb = KnowledgeBase(kb_path(home, "python-faq"), "python-faq")
        kb.add(FAQ_PAGES, encoder)
        kb.close()
        model = FakeBackend(info=ModelInfo(id="local", location="local", context_window=8192))
        original = model.generate

        async def answer(messages, params, constraint=None):  # noqa: ANN001, ANN202 - cites the first passage
            ids = grounded.passage_ids(messages[-1].content)
            model.enqueue([FakeReply(json.dumps({"answer": f"see {ids[0]}", "citations": [ids[0]]}))])
            return await original(messages, params, constraint)

        model.generate = answer  # type: ignore[method-assign]
        spec = ContractSpec.model_validate({"name": "faq", "grounding": {"knowledge_base": "python-faq",
                                                                         "top_k": top_k},
                                            "cache": {"ttl_s": 3600, "semantic": threshold}, "ladder": ["local"]})
        library = Library(home, ["python-faq"], lambda: encoder)
        guard = Guard(GuardSettings("allow"), None, detector_factory=Detector,
                      detector_options={"proper_nouns": True, "allow": DOMAIN_NAMES})  # the fleet file's defaults
        router = Router(Fleet.of_backends([model], guard=guard),
                        {"faq": Contract.load(spec)}, library=library)
        router.cache = AnswerCache(home / "cache.db")

        async def ask(text: str) -> tuple[str | None, float]:
            started = time.perf_counter()
            result = await router.run("faq", text)
            return result.cached, (time.perf_counter() - started) * 1000

        async def run_all() -> list[dict[str, Any]]:
            await ask("warm-up: how do I copy an object?")  # loads the guard's detector and the indexes
            rows = []
            for pair in pairs:
                router.cache.purge()  # type: ignore[union-attr]
                first, miss_ms = await ask(pair["a"])
                status, b_ms = await ask(pair["b"])
                again, exact_ms = await ask(pair["a"])
                fa, fb = library.search("python-faq", pair["a"], top_k), library.search("python-faq", pair["b"], top_k)
                rows.append({"id": pair["id"], "kind": pair["kind"], "first": first, "again": again,
                             "served": status in ("exact", "semantic"),
                             "cosine": float(np.dot(fa.vector, fb.vector)),
                             "same_passages": set(fa.ids()) == set(fb.ids()), "same_order": fa.ids() == fb.ids(),
                             "same_key_words": key_words(pair["a"]) == key_words(pair["b"]),
                             "miss_ms": miss_ms, "b_ms": b_ms, "exact_ms": exact_ms})
            return rows

        rows = asyncio.run(run_all())
        stats = router.cache.stats()  # type: ignore[union-attr]
        library.close()
    para = [r for r in rows if r["kind"] == "paraphrase"]
    near = [r for r in rows if r["kind"] == "near_miss"]
    styled = [r for r in rows if r["kind"] == "restyled"]

    def rate(items: list[dict[str, Any]], pred) -> float:  # noqa: ANN001
        return round(sum(1 for r in items if pred(r)) / len(items), 3) if items else 0.0

    checks = {"cosine only": lambda r: True, "cosine + same passages": lambda r: r["same_passages"],
              "cosine + same passages + same key words (served)": lambda r: r["same_passages"] and r["same_key_words"]}
    sweep = []
    for t in THRESHOLDS:
        row: dict[str, Any] = {"threshold": t}
        for label, check in checks.items():
            row[label] = {"paraphrase_hit_rate": rate(para, lambda r, t=t, c=check: r["cosine"] >= t and c(r)),
                          "restyled_hit_rate": rate(styled, lambda r, t=t, c=check: r["cosine"] >= t and c(r)),
                          "near_miss_false_hit_rate": rate(near, lambda r, t=t, c=check: r["cosine"] >= t and c(r))}
        sweep.append(row)
    hits = [r["b_ms"] for r in rows if r["served"]]

    def p(values: list[float], q: float) -> float | None:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else None

    return {
        "pairs": {"paraphrase": len(para), "near_miss": len(near), "restyled": len(styled)}, "threshold": threshold,
        "top_k": top_k,
        "paraphrase_hit_rate": rate(para, lambda r: r["served"]),
        "restyled_hit_rate": rate(styled, lambda r: r["served"]),
        "near_miss_false_hit_rate": rate(near, lambda r: r["served"]),
        "false_hits": [r["id"] for r in near if r["served"]],
        "not_cached_as_sensitive": [r["id"] for r in rows if r["first"] != "miss"],
        "latency_ms": {"miss_p50": p([r["miss_ms"] for r in rows if r["first"] == "miss"], 0.5),
                       "exact_hit_p50": p([r["exact_ms"] for r in rows if r["again"] == "exact"], 0.5),
                       "exact_hit_p95": p([r["exact_ms"] for r in rows if r["again"] == "exact"], 0.95),
                       "semantic_hit_p50": p(hits, 0.5), "semantic_hit_p95": p(hits, 0.95)},
        "cosine_median": {"paraphrase": round(statistics.median(r["cosine"] for r in para), 3),
                          "restyled": round(statistics.median(r["cosine"] for r in styled), 3),
                          "near_miss": round(statistics.median(r["cosine"] for r in near), 3)},
        "same_passages": {kind: {"set": rate(rs, lambda r: r["same_passages"]), "order": rate(rs, lambda r: r["same_order"])}
                          for kind, rs in (("paraphrase", para), ("restyled", styled), ("near_miss", near))},
        "sweep": sweep, "counters": stats["contracts"].get("faq"),
        "note": "the rung is a scripted local model answering at once: latencies are the gateway's own",
    }
