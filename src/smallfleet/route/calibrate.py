"""Calibration: choose each rung's accept threshold from traces that carry a reference answer.

Every rung but the last is calibrated (the top rung's valid answer is accepted as is). A sample
for rung i is one traced request where rung i answered (accepted, rejected or shadow) and a
reference exists: a label attached to the trace (gold, reviewer) or, failing that, the answer of
the highest rung *above* i in the same trace (so a rung is never judged against itself). For each
signal (mean log-prob, min token log-prob, margin) and each candidate threshold, the accepted set
is {valid and signal >= threshold}; local share = accepted / all, agreement = share of accepted
answers equal to the reference. The chosen rule is the one with the highest local share whose
agreement *lower confidence bound* (Wilson, `z` standard errors, default 1.0) meets the target,
with at least `min_accepted` accepted samples, so a lucky handful does not set the threshold; if
none does, nothing is accepted at that rung.

`calibrate(..., holdout=f)` fits on a deterministic split (by trace id) and checks the chosen rule
on the held-out part, and that check *binds*: if the held-out answers the rule accepts agree with
the reference less often than the target (with at least one accepted held-out answer), the rule is
not installed and the rung escalates everything. A held-out part where the rule accepts nothing
cannot contradict it; `why` says so, and always states how many held-out samples and accepted
answers the verdict rests on.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smallfleet.constrain.outcome import canonical
from smallfleet.contracts.spec import AcceptRule
from smallfleet.trace.record import Trace

SIGNALS = {"mean_logprob": "min_mean_logprob", "min_logprob": "min_token_logprob", "min_margin": "min_margin"}
ANSWERED = ("accepted", "rejected", "shadow")  # attempt statuses that carry an answer and its signals


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


def _point(p: Point | None) -> dict[str, Any] | None:
    """A JSON-friendly point: no infinities; agreement is None when nothing was accepted."""
    if p is None:
        return None
    return {"threshold": p.threshold if math.isfinite(p.threshold) else None,
            "local_share": round(p.local_share, 4),
            "agreement": round(p.agreement, 4) if p.accepted else None, "accepted": p.accepted}


@dataclass
class Calibration:
    """One rung's calibration. `signal`/`threshold` are what was fitted on the training part; `rule()`
    is what is installed (the fitted rule, or "always escalate" when `installed` is False)."""

    signal: str | None
    threshold: float | None
    target: float
    train: Point | None
    curve: list[Point] = field(default_factory=list)
    holdout: Point | None = None
    samples: int = 0  # training samples
    holdout_samples: int = 0
    installed: bool = False
    why: str = ""
    rung: int = 0
    model: str | None = None

    def rule(self) -> AcceptRule:
        if not self.installed or self.signal is None or self.threshold is None:
            return AcceptRule(min_mean_logprob=math.inf)  # always escalate
        return AcceptRule(**{SIGNALS[self.signal]: self.threshold})

    def as_dict(self) -> dict[str, Any]:
        rule = self.rule().model_dump(exclude_none=True) if self.installed and self.signal else "always escalate"
        return {"rung": self.rung, "model": self.model, "signal": self.signal, "threshold": self.threshold,
                "target": self.target, "samples": self.samples, "holdout_samples": self.holdout_samples,
                "train": _point(self.train), "holdout": _point(self.holdout),
                "installed": self.installed, "why": self.why, "accept_rule": rule,
                "curve": [_point(p) for p in self.curve]}


def top_rung_output(trace: Trace, above: int = 0) -> str | None:
    """The valid answer (accepted or shadow) of the highest rung above rung `above` in the trace, if any."""
    top = max((a for a in trace.attempts if a.get("rung", 0) > above and a.get("status") in ("accepted", "shadow")
               and (a.get("signals") or {}).get("valid")), key=lambda a: a["rung"], default=None)
    return top.get("output") if top else None


def samples_from(traces: list[Trace], labels: Mapping[str, str], rung: int = 0,
                 model: str | None = None) -> list[Sample]:
    """Rung `rung`'s own answers (or, given `model`, that model's, wherever it stood in each trace's
    ladder) with their signals, each compared with the trace's reference: its label, else the answer
    of the highest rung above it (never its own answer)."""
    out = []
    for t in traces:
        own = next((a for a in t.attempts if (a.get("model") == model if model is not None else a.get("rung") == rung)
                    and a.get("status") in ANSWERED and a.get("signals") is not None), None)
        if own is None:
            continue
        reference = labels[t.id] if t.id in labels else top_rung_output(t, above=own.get("rung", rung))
        if reference is None:
            continue
        sig = own["signals"]
        out.append(Sample(t.id, bool(sig.get("valid")), {k: sig.get(k) for k in SIGNALS},
                          canonical(own.get("output")) == canonical(reference)))
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


def wilson_upper(successes: int, n: int, z: float = 1.0) -> float:
    """Upper bound of the Wilson score interval (1.0 with no observations)."""
    if n == 0:
        return 1.0
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre + spread) / (1 + z * z / n)


def fit(samples: list[Sample], target: float, min_accepted: int = 5, z: float = 1.0) -> Calibration:
    """The most local rule whose agreement lower bound holds the target on `samples` (installed, unchecked)."""
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
        why = (f"no threshold holds target {target:g} on {len(samples)} training samples (Wilson lower bound, "
               f"z={z:g}, at least {min_accepted} accepted): always escalate") if samples else \
            "no samples: no trace holds this rung's answer and a reference (a label or a higher rung's answer)"
        return Calibration(None, None, target, None, _thin(curves.get("mean_logprob", [])), samples=len(samples),
                           installed=False, why=why)
    return Calibration(best[0], best[1].threshold, target, best[1], _thin(curves[best[0]]), samples=len(samples),
                       installed=True, why="no held-out check")


def _thin(curve: list[Point], points: int = 12) -> list[Point]:
    if len(curve) <= points:
        return curve
    step = (len(curve) - 1) / (points - 1)
    return [curve[round(i * step)] for i in range(points)]


def in_holdout(trace_id: str, fraction: float) -> bool:
    return int(hashlib.sha256(trace_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def calibrate(samples: list[Sample], target: float, holdout: float = 0.0, min_accepted: int = 5,
              z: float = 1.0) -> Calibration:
    """Fit on the training part; check the chosen rule on the held-out part (split by trace id) and
    install it only if the held-out answers it accepts hold the target."""
    train = [s for s in samples if not in_holdout(s.trace_id, holdout)] if holdout else samples
    test = [s for s in samples if in_holdout(s.trace_id, holdout)] if holdout else []
    result = fit(train, target, min_accepted, z)
    result.holdout_samples = len(test)
    if test:
        result.holdout = (Point(math.inf, 0.0, 1.0, 0) if result.signal is None or result.threshold is None
                          else evaluate(test, result.signal, result.threshold))
    if result.signal is None:
        return result
    if not holdout:
        result.why = "no held-out check (holdout 0)"
        return result
    if not test:
        result.why = f"the held-out split is empty ({len(samples)} samples in all): rule not checked"
        return result
    h = result.holdout
    assert h is not None
    right = sum(s.agrees for s in test if s.valid and s.signals.get(result.signal) is not None
                and s.signals[result.signal] >= result.threshold)
    if h.accepted == 0:
        result.why = (f"the rule accepts 0 of {len(test)} held-out samples: "
                      "the held-out check cannot contradict it")
    elif h.agreement < target:
        result.installed = False
        result.why = (f"held-out agreement {h.agreement:.3f} ({right}/{h.accepted} accepted) < target {target:g} "
                      f"on {len(test)} held-out samples: always escalate")
    else:
        result.why = (f"held-out agreement {h.agreement:.3f} ({right}/{h.accepted} accepted) >= target "
                      f"{target:g} on {len(test)} held-out samples")
        if h.accepted < min_accepted:
            result.why += f" (only {h.accepted} accepted held-out answers: weak evidence)"
    return result


def calibrate_rungs(traces: list[Trace], labels: Mapping[str, str], models: Sequence[str], target: float,
                    holdout: float = 0.0, min_accepted: int = 5, z: float = 1.0) -> list[Calibration]:
    """One calibration per rung of a ladder (`models`, smallest first) except the last, which is accepted as is."""
    results = []
    for i, model in enumerate(models[:-1]):
        result = calibrate(samples_from(traces, labels, rung=i, model=model), target, holdout, min_accepted, z)
        result.rung, result.model = i, model
        results.append(result)
    return results


def installed_rules(calibrations: Sequence[Calibration]) -> dict[str, AcceptRule]:
    """The rules to store, model id -> rule (a rule that was not installed is "always escalate")."""
    return {c.model or str(c.rung): c.rule() for c in calibrations}
