"""`smallfleet bench cache --clinc N`: the semantic cache on a classification contract, on real requests.

CLINC150's training requests (15,100, with their intents, out-of-scope included) are put into a real
`AnswerCache` as answered requests, each with its MiniLM embedding; then N of its test requests (evenly
spaced through the in-scope and out-of-scope test sets) look for near hits in it, and each near hit is
checked against the request's own intent. For each similarity threshold and each `agree` (how many
nearest cached requests must all be at or above the threshold and answered alike: `route.caching.agreeing`)
it reports the hit rate and the false-hit rate (hits that served another intent), from one lookup per
request. The latency is that of the lookup (embedding the request, then the nearest entries among the
15,100), the cost of a semantic hit on top of an exact miss.

The cache holds the data set's gold intents, so a false hit here is the cache's own mistake. In service it
holds the model's answers: neighbours that agree may share the model's systematic error, which the cache
then repeats (it cannot be more right than the answers it keeps).

CLINC150 is CC BY 3.0 (Larson et al., 2019); see the data set's LICENSE.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

THRESHOLDS = (0.80, 0.85, 0.90, 0.95)
AGREE = (1, 2, 3, 5)


def run_class_cache_bench(queries: int = 1000) -> dict[str, Any]:
    from smallfleet.cache.store import AnswerCache, Entry, cache_key, canonical
    from smallfleet.embeddings import Encoder
    from smallfleet.route.caching import agreeing
    from smallfleet.workload import clinc150

    data = clinc150.load()
    cached = data["train"] + data["oos_train"]
    tests = data["test"] + data["oos_test"]
    queries = min(queries, len(tests))
    tests = [tests[int(i * len(tests) / queries)] for i in range(queries)]  # evenly spaced: in scope and out
    encoder = Encoder()
    started = time.perf_counter()
    vectors = encoder.encode([q.text for q in cached], batch_size=128)
    fill_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="smallfleet-class-cache-bench-") as tmp:
        store = AnswerCache(Path(tmp) / "cache.db", max_entries=len(cached) + 1)
        for q, vector in zip(cached, vectors):
            key = cache_key(None, "intent", "v1", q.text)
            store.put(Entry(key, "", "intent", "v1", canonical(q.text), {"content": q.intent, "tool_calls": []},
                            None), 3600.0, vector)
        found: list[tuple[str, list[tuple[Any, float]]]] = []
        lookup_ms = []
        for q in tests:
            t0 = time.perf_counter()
            vector = encoder.encode([q.text])[0]
            near = store.nearest(None, "intent", "v1", vector, min(THRESHOLDS), max(AGREE))
            lookup_ms.append((time.perf_counter() - t0) * 1000)
            found.append((q.intent, near))
        store.close()
    rows = []
    for threshold in THRESHOLDS:
        for agree in AGREE:
            hits = wrong = 0
            for intent, near in found:
                entry = agreeing([(e, s) for e, s in near if s >= threshold], agree)
                if entry is not None:
                    hits += 1
                    wrong += entry.answer["content"] != intent
            rows.append({"threshold": threshold, "agree": agree, "hit_rate": round(hits / len(found), 3),
                         "hits": hits, "false_hits": wrong,
                         "false_hit_rate": round(wrong / hits, 4) if hits else 0.0})
    ordered = sorted(lookup_ms)
    return {"cached_requests": len(cached), "queries": len(found), "embed_cached_s": round(fill_s, 1),
            "lookup_ms_p50": round(statistics.median(lookup_ms), 1),
            "lookup_ms_p95": round(ordered[int(0.95 * (len(ordered) - 1))], 1), "by_setting": rows}
