"""`smallfleet guard eval`: precision and recall of the detector per category, and its time per request.

Scored on the seeded labelled set of `workload.pii` (positives with exact spans, hard negatives full of
look-alikes: order numbers, timestamps, versions, prices, SKUs, numbers that fail Luhn or mod-97 ...).
A finding is a true positive when it overlaps a labelled span of the same category; every other finding
is a false positive of its category (on a hard negative, or a wrong category). Recall is per labelled
span. `masked` is what redaction cares about: the share of labelled values that some finding of any
category covers entirely (a value found under the wrong category is still not sent out).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

from smallfleet.guard.detect import Detector, Finding


def _overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    return a_start < b_end and b_start < a_end


def score(found: Sequence[Sequence[Finding]], snippets: Sequence[Any]) -> dict[str, Any]:
    """Per-category precision/recall/F1 and the masked share, from `found[i]` = findings in `snippets[i]`."""
    tp: dict[str, int] = {}
    fp: dict[str, int] = {}
    fn: dict[str, int] = {}
    masked = total = 0
    fp_on_negatives = 0
    for findings, snippet in zip(found, snippets, strict=True):
        for f in findings:
            if any(s.category == f.category and _overlaps(f.start, f.end, s.start, s.end) for s in snippet.spans):
                tp[f.category] = tp.get(f.category, 0) + 1
            else:
                fp[f.category] = fp.get(f.category, 0) + 1
                fp_on_negatives += snippet.kind == "hard_negative"
        for s in snippet.spans:
            total += 1
            if not any(f.category == s.category and _overlaps(f.start, f.end, s.start, s.end) for f in findings):
                fn[s.category] = fn.get(s.category, 0) + 1
            covered = [f for f in findings if _overlaps(f.start, f.end, s.start, s.end)]
            masked += bool(covered) and min(f.start for f in covered) <= s.start and max(
                f.end for f in covered) >= s.end
    categories = sorted(set(tp) | set(fp) | set(fn))
    rows = {}
    for c in categories:
        t, p, n = tp.get(c, 0), fp.get(c, 0), fn.get(c, 0)
        precision = t / (t + p) if t + p else None
        recall = t / (t + n) if t + n else None
        f1 = (2 * precision * recall / (precision + recall)) if precision and recall else None
        rows[c] = {"labelled": t + n, "found": t + p, "precision": _r(precision), "recall": _r(recall), "f1": _r(f1)}
    all_tp, all_fp, all_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    return {"categories": rows,
            "micro": {"precision": _r(all_tp / (all_tp + all_fp) if all_tp + all_fp else None),
                      "recall": _r(all_tp / (all_tp + all_fn) if all_tp + all_fn else None)},
            "masked": _r(masked / total if total else None), "labelled_values": total,
            "false_positives_on_hard_negatives": fp_on_negatives}


def _r(x: float | None) -> float | None:
    return round(x, 4) if x is not None else None


def run_guard_eval(n: int = 400, seed: int = 13, detector: Detector | None = None,
                   options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score `detector` (or one built from `options`, its load time measured) on the seeded labelled set."""
    from smallfleet.workload.pii import generate_eval_set

    snippets = generate_eval_set(n, seed)
    started = time.perf_counter()
    detector = detector or Detector(**(options or {}))
    load_s = time.perf_counter() - started
    found, times = [], []
    for s in snippets:
        t0 = time.perf_counter()
        found.append(detector.find(s.text))
        times.append((time.perf_counter() - t0) * 1000)
    ordered = sorted(times)
    out = score(found, snippets)
    out.update({"snippets": len(snippets), "hard_negatives": sum(s.kind == "hard_negative" for s in snippets),
                "seed": seed, "load_s": round(load_s, 2),
                "ms_per_request": {"p50": round(statistics.median(times), 2),
                                   "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
                                   "mean_chars": round(statistics.mean(len(s.text) for s in snippets))}})
    return out
