"""Escalation signals computed from one rung's answer, and the accept decision over them.

- validity: the answer honours the output constraint and every validator;
- mean / min token log-probability over the tokens the model chose (forced tokens carry no signal);
- margin: the smallest gap, over chosen tokens, between the chosen token's probability and the best
  allowed alternative's (for choice / enum outputs this is the deciding token's margin);
- agreement: share of k samples that give the same answer as the first.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from smallfleet.backends.base import Generation
from smallfleet.contracts.spec import AcceptRule


@dataclass(frozen=True)
class Signals:
    valid: bool
    mean_logprob: float | None
    min_logprob: float | None
    min_margin: float | None
    agreement: float | None = None
    retrieval: float | None = None  # grounded contracts: the best passage's cosine similarity to the question
    support: float | None = None  # grounded contracts: share of the answer's words found in its cited passages

    @property
    def confidence(self) -> float | None:
        """Geometric-mean probability of the chosen tokens, in [0, 1]."""
        return None if self.mean_logprob is None else math.exp(self.mean_logprob)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def signals_of(gen: Generation, valid: bool, agreement: float | None = None) -> Signals:
    chosen = [lp for lp in gen.logprobs if not lp.forced and math.isfinite(lp.logprob)]
    if not chosen:
        return Signals(valid, None, None, None, agreement)
    margins = []
    for lp in chosen:
        alternatives = [t.logprob for t in lp.top if t.token != lp.token]
        if lp.top:
            margins.append(math.exp(lp.logprob) - (math.exp(max(alternatives)) if alternatives else 0.0))
    values = [lp.logprob for lp in chosen]
    return Signals(valid=valid, mean_logprob=sum(values) / len(values), min_logprob=min(values),
                   min_margin=min(margins) if margins else None, agreement=agreement)


def rejection(signals: Signals, rule: AcceptRule) -> str | None:
    """Why the answer is not good enough under `rule` (an escalation reason), or None to accept it."""
    if not signals.valid:
        return "invalid_output"
    checks = [("low_mean_logprob", rule.min_mean_logprob, signals.mean_logprob),
              ("low_token_logprob", rule.min_token_logprob, signals.min_logprob),
              ("low_margin", rule.min_margin, signals.min_margin),
              ("disagreement", rule.min_agreement, signals.agreement),
              ("low_retrieval_confidence", rule.min_retrieval, signals.retrieval),
              ("unsupported_answer", rule.min_support, signals.support)]
    for reason, threshold, value in checks:
        if threshold is not None and (value is None or value < threshold):
            return reason
    return None
