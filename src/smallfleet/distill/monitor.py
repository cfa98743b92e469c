"""Live quality of promoted specialists, and automatic rollback when it falls below the target.

A specialist's live agreement is measured on the newest requests it answered that carry a reference
(at most `window` of them, so a drift is not hidden behind a long good history): a live shadow answer
of the top rung (`route.live`) or a label a person gave (`sources` narrows that, e.g. to `shadow`).
When the upper end of its confidence interval (Wilson, z=1) is below the contract's quality target on
at least `min_samples` references, the version is rolled back (to the version before it, or to the fleet
file's ladder) and the reason is recorded in the registry's history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smallfleet.config.settings import Settings
from smallfleet.constrain.outcome import canonical
from smallfleet.contracts.spec import ContractSpec
from smallfleet.route.calibrate import wilson_upper
from smallfleet.route.report import served_answer
from smallfleet.specialists.registry import SpecialistRegistry
from smallfleet.trace.store import TraceQuery, TraceStore, open_store


@dataclass
class LiveQuality:
    model: str
    answered: int  # requests this model answered
    references: int  # of those, how many carry a reference
    agreement: float | None
    upper: float

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "answered": self.answered, "references": self.references,
                "agreement": round(self.agreement, 4) if self.agreement is not None else None,
                "upper_bound": round(self.upper, 4)}


def live_quality(store: TraceStore, contract: str, model: str, window: int = 200,
                 sources: tuple[str, ...] | None = None) -> LiveQuality:
    """Agreement of `model`'s newest `window` referenced answers (references from `sources` prefixes only, if given)."""
    references = {k: v for k, v in store.label_sources(contract).items()
                  if sources is None or v[1].startswith(sources)}
    answered = [t for t in store.query(TraceQuery(limit=10_000_000, contract=contract))
                if t.backend_model == model and t.status == "ok"]
    referenced = sorted((t for t in answered if t.id in references), key=lambda t: t.created_at)[-window:]
    judged = [canonical(served_answer(t)) == canonical(references[t.id][0]) for t in referenced]
    agree = sum(judged)
    return LiveQuality(model, len(answered), len(judged), agree / len(judged) if judged else None,
                       wilson_upper(agree, len(judged)))


def check_and_roll_back(settings: Settings, spec: ContractSpec, min_samples: int = 30, window: int = 200,
                        sources: tuple[str, ...] | None = None) -> dict[str, Any] | None:
    """Roll the promoted version back if its live agreement is confidently below target; what was found."""
    registry = SpecialistRegistry(settings.home)
    card = registry.promoted(spec.name)
    if card is None:
        return None
    store = open_store(settings)
    try:
        quality = live_quality(store, spec.name, card.model_id, window, sources)
    finally:
        store.close()
    out: dict[str, Any] = {"version": card.version, **quality.as_dict(), "target": spec.quality_target,
                           "rolled_back": False}
    if quality.references >= min_samples and quality.upper < spec.quality_target:
        reason = (f"live agreement {quality.agreement:.3f} on {quality.references} referenced answers "
                  f"(upper bound {quality.upper:.3f}) is below the target {spec.quality_target:g}")
        state = registry.rollback(spec.name, reason)
        out.update(rolled_back=True, reason=reason, now=state["promoted"])
    return out
