"""The evaluation gate: every candidate on the same frozen test split, calibrated on the dev split.

A candidate is any backend that can answer the contract (the zero-shot base rung, a new
specialist, the promoted one). Each answers the dev and test inputs with the prompt the router
would send; its answers are checked under the contract and compared with the references:
validity, exact match (canonical form), per-field accuracy (JSON objects), latency. An accept rule
is fitted on the dev answers (`route.calibrate.fit`, the same code as `smallfleet calibrate`) and
applied to the test answers: the local share it allows and the agreement of what it accepts.

A candidate passes when (1) its exact match on test beats the incumbent's (the promoted
specialist, or the zero-shot base when none is promoted), (2) the dev-fitted rule exists and the
test answers it accepts agree with the references at the contract's quality target or better.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from smallfleet.backends.base import Backend, Generation, SamplingParams
from smallfleet.constrain.outcome import canonical
from smallfleet.contracts.spec import Rung
from smallfleet.distill.dataset import Example
from smallfleet.errors import SmallfleetError
from smallfleet.route.calibrate import Calibration, Sample, evaluate, fit
from smallfleet.route.router import Contract, answer_text
from smallfleet.route.signals import signals_of


@dataclass
class Answered:
    """One candidate's answers to one split."""

    samples: list[Sample]
    answers: list[str | None]
    latencies_ms: list[float]


async def answer(backend: Backend, contract: Contract, examples: Sequence[Example], rung: Rung | None = None) -> Answered:
    """Greedy answers with the router's own prompt (for `rung`), constraint and token budget."""
    params = SamplingParams(max_tokens=contract.spec.max_tokens, temperature=0.0, top_logprobs=2,
                            constraint_instructions=rung is None or rung.prompt != "bare")
    samples, answers, latencies = [], [], []
    for e in examples:
        per_input = contract.for_text(e.input)  # a grounded contract: this input's passage ids
        started = time.perf_counter()
        try:
            gen: Generation | None = await backend.generate(contract.messages(e.input, rung), params,
                                                            per_input.constraint)
        except SmallfleetError:
            gen = None
        latencies.append((time.perf_counter() - started) * 1000)
        if gen is None:
            samples.append(Sample(e.id, False, {}, False))
            answers.append(None)
            continue
        outcome = per_input.check(gen)
        text = answer_text(gen, outcome)
        sig = signals_of(gen, outcome.valid)
        samples.append(Sample(e.id, outcome.valid, {"mean_logprob": sig.mean_logprob, "min_logprob": sig.min_logprob,
                                                    "min_margin": sig.min_margin},
                              outcome.valid and canonical(text) == e.reference))
        answers.append(text)
    return Answered(samples, answers, latencies)


def field_accuracy(answers: Sequence[str | None], examples: Sequence[Example]) -> dict[str, float]:
    """Per top-level field of JSON object references: share of answers with that field right."""
    hits: dict[str, int] = {}
    for text, e in zip(answers, examples, strict=True):
        try:
            ref = json.loads(e.reference)
        except ValueError:
            return {}
        if not isinstance(ref, dict):
            return {}
        try:
            got = json.loads(text) if text else {}
        except ValueError:
            got = {}
        for key, value in ref.items():
            hits[key] = hits.get(key, 0) + (isinstance(got, dict) and got.get(key) == value)
    return {k: round(v / len(examples), 4) for k, v in hits.items()} if examples else {}


@dataclass
class Scorecard:
    """One candidate's figures on the frozen test split, with its dev-fitted accept rule."""

    name: str
    n: int
    exact_match: float
    validity: float
    field_accuracy: dict[str, float]
    latency_ms_p50: float
    calibration: Calibration
    test_local_share: float
    test_accepted_agreement: float | None
    test_accepted: int
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        rule = self.calibration.rule().model_dump(exclude_none=True) if self.calibration.installed else None
        return {"name": self.name, "n": self.n, "exact_match": round(self.exact_match, 4),
                "validity": round(self.validity, 4), "field_accuracy": self.field_accuracy,
                "latency_ms_p50": round(self.latency_ms_p50, 2), "dev_rule": rule,
                "dev_calibration": self.calibration.why if not self.calibration.installed else "installed",
                "test_local_share": round(self.test_local_share, 4),
                "test_accepted_agreement": (round(self.test_accepted_agreement, 4)
                                            if self.test_accepted_agreement is not None else None),
                "test_accepted": self.test_accepted, **self.extra}


def scorecard(name: str, dev: Answered, test: Answered, test_examples: Sequence[Example],
              target: float, min_accepted: int = 5) -> Scorecard:
    calibration = fit(dev.samples, target, min_accepted=min_accepted)
    if calibration.installed and calibration.signal is not None and calibration.threshold is not None:
        point = evaluate(test.samples, calibration.signal, calibration.threshold)
        share, agreement, accepted = point.local_share, (point.agreement if point.accepted else None), point.accepted
    else:
        share, agreement, accepted = 0.0, None, 0
    n = len(test.samples)
    return Scorecard(name, n, sum(s.agrees for s in test.samples) / n if n else 0.0,
                     sum(s.valid for s in test.samples) / n if n else 0.0,
                     field_accuracy(test.answers, test_examples),
                     statistics.median(test.latencies_ms) if test.latencies_ms else 0.0,
                     calibration, share, agreement, accepted)


@dataclass
class Verdict:
    passed: bool
    reasons: list[str]
    incumbent: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": self.reasons, "incumbent": self.incumbent}


def judge(candidate: Scorecard, incumbent: Scorecard | None, target: float) -> Verdict:
    """Does `candidate` replace `incumbent`? Every failed condition is named. With no incumbent (the ladder
    has no local first rung and nothing is promoted), only the quality condition applies."""
    reasons = []
    if incumbent is not None and candidate.exact_match <= incumbent.exact_match:
        reasons.append(f"exact match {candidate.exact_match:.3f} does not beat {incumbent.name}'s "
                       f"{incumbent.exact_match:.3f}")
    if not candidate.calibration.installed:
        reasons.append(f"no accept rule holds the target on dev: {candidate.calibration.why}")
    elif candidate.test_accepted == 0:
        reasons.append("the dev-fitted rule accepts no test answer")
    elif (candidate.test_accepted_agreement or 0.0) < target:
        reasons.append(f"accepted test answers agree {candidate.test_accepted_agreement:.3f} < target {target:g}")
    if reasons:
        return Verdict(False, reasons, incumbent.name if incumbent else None)
    beats = f"beats {incumbent.name} and " if incumbent is not None else "no local incumbent; "
    return Verdict(True, [f"{beats}holds target {target:g} on test"], incumbent.name if incumbent else None)
