"""`smallfleet kb eval`: how well a knowledge base finds the passage that answers each question, and (with a
grounded contract) how well the fleet answers from it.

A question file is JSON Lines: `{"id", "question", "answer_in": ["page.html#anchor", ...], "kind"}` per
line (`answer_in` empty for a question the knowledge base cannot answer; a line with `_about` is a
header and skipped). A retrieved chunk matches a gold location when its document's file name and its
anchor are the ones named. Reported per retrieval mode and per question kind: recall@1/3/5/10 (a gold
passage among the first k) and MRR (mean of 1/rank of the first gold passage within the first 10),
over answerable questions; and, for the router's retrieval-confidence signal, the best cosine of
answerable against unanswerable questions.

Answers (`evaluate_answers`, through a grounded contract's whole ladder): an answerable question is
answered right when the answer cites a gold passage and contains one of the question's expected
keywords (words the FAQ's answer uses: `copy.deepcopy`, `global`); an unanswerable one when the
answer is the not-found answer. Reported beside it: `cites_gold` (the lenient half: a gold passage
among the citations, whatever the answer says), citation precision (the share of citations, on
answerable questions, that are gold passages), local share (answered by the ladder's first rung),
escalation reasons, and latency per request.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from smallfleet.errors import ConfigError
from smallfleet.kb.parse import json_lines
from smallfleet.kb.retrieve import Retrieval, Retriever

KS = (1, 3, 5, 10)


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answer_in: tuple[str, ...]
    kind: str
    keywords: tuple[str, ...] = ()


def load_questions(path: Path) -> list[Question]:
    """The questions of a JSONL file (a clear error naming the line for anything malformed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the questions ({exc})") from None
    out = []
    for n, item in json_lines(text, path):
        if "_about" in item:
            continue
        question, gold = item.get("question"), item.get("answer_in", [])
        if not isinstance(question, str) or not question.strip():
            raise ConfigError(f"{path}: line {n} has no 'question' string")
        if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold):
            raise ConfigError(f"{path}: line {n}: 'answer_in' must be a list of 'file#anchor' strings")
        keywords = tuple(k for k in item.get("keywords", []) if isinstance(k, str))
        out.append(Question(str(item.get("id", n)), question, tuple(gold), str(item.get("kind", "question")),
                            keywords))
    if not out:
        raise ConfigError(f"{path}: no questions")
    return out


def gold_rank(found: Retrieval, gold: tuple[str, ...]) -> int | None:
    """The 1-based rank of the first retrieved chunk that is one of the gold locations."""
    for rank, hit in enumerate(found.hits, 1):
        if f"{Path(hit.chunk.document).name}#{hit.chunk.anchor}" in gold:
            return rank
    return None


def _summary(ranks: list[int | None]) -> dict[str, float | int]:
    n = len(ranks)
    out: dict[str, float | int] = {"questions": n}
    for k in KS:
        out[f"recall@{k}"] = round(sum(1 for r in ranks if r is not None and r <= k) / n, 3) if n else 0.0
    out["mrr"] = round(sum(1 / r for r in ranks if r is not None) / n, 3) if n else 0.0
    return out


def evaluate_retrieval(retriever: Retriever, questions: list[Question],
                       modes: tuple[str, ...] = ("hybrid", "lexical", "dense")) -> dict[str, object]:
    """Recall@k and MRR per mode (overall and per kind), and the confidence signal's separation."""
    report: dict[str, object] = {"questions": len(questions),
                                 "answerable": sum(1 for q in questions if q.answer_in)}
    for mode in modes:
        ranks: dict[str, list[int | None]] = {}
        cos_in: list[float] = []
        cos_out: list[float] = []
        ms: list[float] = []
        for q in questions:
            found = retriever.search(q.question, k=max(KS), mode=mode)
            ms.append(found.ms)
            if q.answer_in:
                rank = gold_rank(found, q.answer_in)
                ranks.setdefault("all", []).append(rank)
                ranks.setdefault(q.kind, []).append(rank)
                cos_in.append(found.top_cosine)
            else:
                cos_out.append(found.top_cosine)
        ordered = sorted(ms)
        report[mode] = {
            **_summary(ranks.get("all", [])),
            "by_kind": {kind: _summary(r) for kind, r in sorted(ranks.items()) if kind != "all"},
            "ms_p50": round(median(ms), 1), "ms_p95": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
            "top_cosine_median": {"answerable": round(median(cos_in), 3) if cos_in else None,
                                  "unanswerable": round(median(cos_out), 3) if cos_out else None},
        }
    return report


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else 0.0


def evaluate_answers(runtime, contract: str, questions: list[Question],  # noqa: ANN001 - a runtime.Runtime
                     locate) -> dict[str, object]:  # noqa: ANN001 - cite id -> "file#anchor"
    """Run each question through `contract` (grounded) and score the answers (see the module's docstring)."""
    from smallfleet.kb.grounded import NOT_FOUND

    rows = []
    for q in questions:
        started = time.perf_counter()
        result = runtime.run(contract, q.question)
        ms = (time.perf_counter() - started) * 1000
        answer, cited = None, []
        if result.outcome is not None and result.outcome.valid and result.outcome.content:
            value = json.loads(result.outcome.content)
            answer, cited = value.get("answer"), list(dict.fromkeys(value.get("citations", [])))  # each id once
        found = answer is not None and not (answer == NOT_FOUND and not cited)
        gold_cited = [c for c in cited if locate(c) in q.answer_in]
        keyword = not q.keywords or any(k.lower() in str(answer).lower() for k in q.keywords)
        cites_gold = found and bool(gold_cited)
        right = (cites_gold and keyword) if q.answer_in else (answer == NOT_FOUND and not cited)
        rows.append({"id": q.id, "kind": q.kind, "answerable": bool(q.answer_in), "right": right,
                     "cites_gold": cites_gold, "cited": len(cited), "gold_cited": len(gold_cited), "local": result.local,
                     "rung": result.rung, "reason": (result.escalation_reason or "").split(";")[0] or None,
                     "ms": ms, "answer": answer})
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    cited = sum(int(r["cited"]) for r in answerable)
    by_kind: dict[str, list[dict]] = {}
    for r in rows:
        by_kind.setdefault(str(r["kind"]), []).append(r)
    ms = [float(r["ms"]) for r in rows]
    return {
        "contract": contract, "questions": len(rows),
        "answer_accuracy": round(sum(r["right"] for r in rows) / len(rows), 3) if rows else 0.0,
        "answerable_accuracy": round(sum(r["right"] for r in answerable) / len(answerable), 3) if answerable else None,
        "cites_gold": round(sum(r["cites_gold"] for r in answerable) / len(answerable), 3) if answerable else None,
        "unanswerable_accuracy": (round(sum(r["right"] for r in unanswerable) / len(unanswerable), 3)
                                  if unanswerable else None),
        "citation_precision": round(sum(int(r["gold_cited"]) for r in answerable) / cited, 3) if cited else None,
        "by_kind": {k: round(sum(r["right"] for r in v) / len(v), 3) for k, v in sorted(by_kind.items())},
        "local_share": round(sum(r["local"] and r["rung"] == 0 for r in rows) / len(rows), 3) if rows else 0.0,
        "escalation_reasons": dict(Counter(str(r["reason"]) for r in rows if r["reason"])),
        "ms_p50": _percentile(ms, 0.5), "ms_p95": _percentile(ms, 0.95),
        "examples": [{k: r[k] for k in ("id", "kind", "right", "answer")} for r in rows[:5]],
    }
