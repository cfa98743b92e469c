"""Calibration: choose the first rung's accept threshold from traces that carry a reference answer.

A sample is one traced request where the first rung answered (accepted, rejected or shadow) and a
reference exists: a label attached to the trace (gold, reviewer) or, failing that, the top rung's
answer in the same trace. For each signal (mean log-prob, min token log-prob, margin) and each
candidate threshold, the accepted set is {valid and signal >= threshold}; local share = accepted /
all, agreement = share of accepted answers equal to the reference. The chosen rule is the one with
the highest local share whose agreement *lower confidence bound* (Wilson, `z` standard errors,
default 1.0) meets the target, with at least `min_accepted` accepted samples, so a lucky handful
does not set the threshold; if none does, nothing is accepted locally.
`split` evaluates the chosen rule on held-out samples it was not fitted on.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

from smallfleet.constrain.outcome import canonical
from smallfleet.contracts.spec import AcceptRule
from smallfleet.trace.record import Trace

SIGNALS = {"mean_logprob": "min_mean_logprob", "min_logprob": "min_token_logprob", "min_margin": "min_margin"}


@dataclass(frozen=True)
class Sample:
    trace_id: str
    valid: bool
    signals: dict[str, float | None]
    agrees: bool


@dataclass(frozen=True)
class Point:
    threshold: float
    local_share: float
    agreement: float
    accepted: int


@dataclass
class Calibration:
    signal: str | None
    threshold: float | None
    target: float
    train: Point | None
    curve: list[Point] = field(default_factory=list)
    holdout: Point | None = None
    samples: int = 0

    def rule(self) -> AcceptRule:
        if self.signal is None or self.threshold is None:
            return AcceptRule(min_mean_logprob=math.inf)  # nothing meets the target: always escalate
        return AcceptRule(**{SIGNALS[self.signal]: self.threshold})

    def as_dict(self) -> dict[str, Any]:
        def point(p: Point | None) -> dict[str, float] | None:
            return None if p is None else {"threshold": p.threshold, "local_share": round(p.local_share, 4),
                                           "agreement": round(p.agreement, 4), "accepted": p.accepted}

        return {"signal": self.signal, "threshold": self.threshold, "target": self.target, "samples": self.samples,
                "train": point(self.train), "holdout": point(self.holdout),
                "curve": [point(p) for p in self.curve]}


def top_rung_output(trace: Trace) -> str | None:
    """The valid answer of the highest rung above the first that answered (accepted or shadow), if any."""
    top = max((a for a in trace.attempts if a.get("rung", 0) > 0 and a.get("status") in ("accepted", "shadow")
               and (a.get("signals") or {}).get("valid")), key=lambda a: a["rung"], default=None)
    return top.get("output") if top else None


def samples_from(traces: list[Trace], labels: dict[str, str]) -> list[Sample]:
    out = []
    for t in traces:
        first = next((a for a in t.attempts if a.get("rung") == 0 and a.get("signals") is not None), None)
        if first is None:
            continue
        reference = labels.get(t.id) or top_rung_output(t)
        if reference is None:
            continue
        sig = first["signals"]
        out.append(Sample(t.id, bool(sig.get("valid")), {k: sig.get(k) for k in SIGNALS},
                          canonical(first.get("output")) == canonical(reference)))
    return out


def evaluate(samples: list[Sample], signal: str, threshold: float) -> Point:
    accepted = [s for s in samples if s.valid and s.signals.get(signal) is not None and s.signals[signal] >= threshold]
    share = len(accepted) / len(samples) if samples else 0.0
    agreement = sum(s.agrees for s in accepted) / len(accepted) if accepted else 1.0
    return Point(threshold, share, agreement, len(accepted))


def wilson_lower(successes: int, n: int, z: float) -> float:
    """Lower bound of the Wilson score interval for a proportion."""
    if n == 0:
        return 0.0
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def fit(samples: list[Sample], target: float, min_accepted: int = 5, z: float = 1.0) -> Calibration:
    best: tuple[str, Point] | None = None
    curves: dict[str, list[Point]] = {}
    for signal in SIGNALS:
        values = sorted({s.signals[signal] for s in samples if s.signals.get(signal) is not None})
        curve = [evaluate(samples, signal, v) for v in values]
        curves[signal] = curve
        for p in curve:
            bound = wilson_lower(round(p.agreement * p.accepted), p.accepted, z)
            if bound >= target and p.accepted >= min_accepted and (best is None or
                                                                    p.local_share > best[1].local_share):
                best = (signal, p)
    if best is None:
        shown = curves.get("mean_logprob", [])
        return Calibration(None, None, target, None, _thin(shown), samples=len(samples))
    return Calibration(best[0], best[1].threshold, target, best[1], _thin(curves[best[0]]), samples=len(samples))


def _thin(curve: list[Point], points: int = 12) -> list[Point]:
    if len(curve) <= points:
        return curve
    step = (len(curve) - 1) / (points - 1)
    return [curve[round(i * step)] for i in range(points)]


def in_holdout(trace_id: str, fraction: float) -> bool:
    return int(hashlib.sha256(trace_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def calibrate(samples: list[Sample], target: float, holdout: float = 0.0, min_accepted: int = 5,
              z: float = 1.0) -> Calibration:
    """Fit on the training part; report the chosen rule on the held-out part (deterministic split by id)."""
    train = [s for s in samples if not in_holdout(s.trace_id, holdout)] if holdout else samples
    test = [s for s in samples if in_holdout(s.trace_id, holdout)] if holdout else []
    result = fit(train, target, min_accepted, z)
    if test:
        if result.signal is None:
            result.holdout = Point(math.inf, 0.0, 1.0, 0)
        else:
            result.holdout = evaluate(test, result.signal, result.threshold)
    return result
