"""Accounting over routed traces: local share, cost versus all-top-rung, quality, latency, escalations.

- local share: requests answered by a local rung;
- cost: what was spent (all attempts, shadow runs included), and what sending every request to the
  top rung would have cost, estimated from the observed mean cost of top-rung answers;
- quality versus the reference: share of answers equal to the reference (a label on the trace, or
  else the top rung's answer in the same trace), overall and for the locally answered requests
  alone (what calibration promises); `top_rung_quality` is the top rung's own agreement with
  labels where both exist;
- latency p50/p95 and escalations counted by reason;
- `by_rung`: for each rung that answered requests, its model and location, the share of requests
  answered there, the quality of those answers versus a reference (a label, else the answer of a
  rung *above* it in the same trace: a rung is never judged against itself, so top-rung answers
  are judged on labels only), the mean cost of those requests (all their attempts) and their
  latency p50. Every rung whose model is local counts as local, whatever its place in the ladder.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from smallfleet.stats import percentile
from smallfleet.constrain.outcome import canonical
from smallfleet.route.calibrate import top_rung_output
from smallfleet.trace.record import Trace


def report(traces: list[Trace], labels: dict[str, str], top_cost_per_request: float | None = None) -> dict[str, Any]:
    """The figures over `traces`. `top_cost_per_request` estimates what one top-rung answer costs when
    none of these traces holds one (every request answered locally); else the observed mean is used."""
    answered = [t for t in traces if t.status == "ok" and t.rung is not None]
    n = len(traces)
    local = [t for t in answered if any(a.get("status") == "accepted" and a.get("location") == "local"
                                        and a.get("rung") == t.rung for a in t.attempts)]
    top_costs = [a["cost"] for t in traces for a in t.attempts
                 if a.get("status") in ("accepted", "shadow") and a.get("location") == "remote"]
    mean_top = statistics.fmean(top_costs) if top_costs else (top_cost_per_request or 0.0)
    spent = sum(t.cost or 0.0 for t in traces)
    all_top = mean_top * n
    agree, top_agree, judged, top_judged, local_agree, local_judged = 0, 0, 0, 0, 0, 0
    local_ids = {t.id for t in local}
    for t in answered:
        top = top_rung_output(t)  # once per trace
        reference = labels.get(t.id) or top
        if reference is not None:
            judged += 1
            same = canonical(served_answer(t)) == canonical(reference)
            agree += same
            if t.id in local_ids:
                local_judged += 1
                local_agree += same
        if t.id in labels and top is not None:
            top_judged += 1
            top_agree += canonical(top) == canonical(labels[t.id])
    latencies = [t.latency_ms for t in traces if t.latency_ms is not None]
    reasons = Counter((t.escalation_reason or "").split(";")[0] for t in traces if t.escalation_reason)
    quality = agree / judged if judged else None
    by_rung = _by_rung(answered, labels, n)
    top_quality = top_agree / top_judged if top_judged else None
    return {
        "requests": n,
        "answered": len(answered),
        "local_share": round(len(local) / n, 4) if n else None,
        "cost_usd": round(spent, 6),
        "cost_all_top_rung_usd": round(all_top, 6),
        "cost_reduction": round(1 - spent / all_top, 4) if all_top else None,
        "quality_vs_reference": round(quality, 4) if quality is not None else None,
        "references": judged,
        "local_answers_quality": round(local_agree / local_judged, 4) if local_judged else None,
        "top_rung_quality": round(top_quality, 4) if top_quality is not None else None,
        "quality_loss_vs_top_rung": (round(top_quality - quality, 4)
                                     if quality is not None and top_quality is not None else None),
        "latency_ms": {"p50": round(percentile(latencies, 50), 1) if latencies else None,
                       "p95": round(percentile(latencies, 95), 1) if latencies else None},
        "escalations": dict(reasons.most_common()),
        "by_rung": by_rung,
    }


def served_answer(t: Trace) -> str | None:
    """What the trace answered, in the form references are stored in: tool calls as a JSON list (the
    answering attempt's record), else the text. `t.output` is only the text content, empty for calls."""
    attempt = _answering_attempt(t)
    return attempt["output"] if attempt is not None and attempt.get("output") is not None else t.output


def _answering_attempt(t: Trace) -> dict[str, Any] | None:
    """The attempt whose answer the trace returned (accepted, or kept as the best valid answer)."""
    at_rung = [a for a in t.attempts if a.get("rung") == t.rung and a.get("status") in ("accepted", "rejected")]
    return next((a for a in at_rung if a.get("status") == "accepted"), at_rung[0] if at_rung else None)


def _by_rung(answered: list[Trace], labels: dict[str, str], n: int) -> list[dict[str, Any]]:
    groups: dict[int, list[Trace]] = {}
    for t in answered:
        groups.setdefault(t.rung, []).append(t)  # type: ignore[arg-type]
    rows = []
    for rung in sorted(groups):
        traces = groups[rung]
        attempt = next((a for a in map(_answering_attempt, traces) if a is not None), None) or {}
        agree = judged = 0
        for t in traces:
            reference = labels[t.id] if t.id in labels else top_rung_output(t, above=rung)
            if reference is not None:
                judged += 1
                agree += canonical(served_answer(t)) == canonical(reference)
        latencies = [t.latency_ms for t in traces if t.latency_ms is not None]
        rows.append({
            "rung": rung,
            "model": attempt.get("model") or traces[0].backend_model,
            "location": attempt.get("location"),
            "answers": len(traces),
            "share": round(len(traces) / n, 4) if n else None,
            "quality_vs_reference": round(agree / judged, 4) if judged else None,
            "references": judged,
            "mean_cost_usd": round(statistics.fmean(t.cost or 0.0 for t in traces), 6),
            "latency_ms_p50": round(percentile(latencies, 50), 1) if latencies else None,
        })
    return rows
