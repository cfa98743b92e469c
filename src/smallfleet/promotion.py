"""Promoted specialists in a running router: each contract's first rung follows the registry, live.

The fleet file declares a contract's ladder; when a specialist version is promoted, the contract is
served as `[specialist, *declared ladder]` with the accept rule calibrated for that version (or
"never accept" until it is calibrated). `Promotions.refresh()` compares the registry's promotion
state and the calibration files with what the router serves and swaps only the contracts that
changed: the new specialist's backend is built first and added to the fleet, then the contract is
replaced in one assignment, so a request already running keeps the contract (and backend) it
started with and none fails. The gateway calls `refresh` every `interval_s` seconds (`watch`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from smallfleet.admission import Admission
from smallfleet.backends.base import Backend, ModelInfo
from smallfleet.contracts.spec import AcceptRule, ContractSpec, Rung
from smallfleet.errors import ConfigError, SmallfleetError
from smallfleet.fleet import Fleet, FleetEntry
from smallfleet.route.predictor import TextPredictor
from smallfleet.route.router import Contract, Router
from smallfleet.route.thresholds import ThresholdStore
from smallfleet.specialists.registry import Card, SpecialistRegistry

log = logging.getLogger("smallfleet.promotion")

PREDICTOR_SKIP_BELOW = 0.2  # skip the first rung only when the predictor is fairly sure it would fail
UNCALIBRATED = AcceptRule(min_mean_logprob=math.inf)  # a specialist with no calibrated rule accepts nothing


def predictor_path(home: Path, contract: str, model: str) -> Path:
    """Where the predictor for `contract`'s first rung is kept: keyed by that rung's model, so a new
    first rung (a promoted specialist) never inherits a predictor learnt on another model's failures."""
    from urllib.parse import quote

    return home / "predictors" / contract / f"{quote(model, safe='')}.pkl"


def specialist_backend(registry: SpecialistRegistry, card: Card, encoder: object | None = None) -> Backend:
    """The backend that serves a specialist version (a classifier, or a fine-tuned GGUF through llama.cpp).
    Classifiers may share one sentence `encoder` (loading it is the slow part of a swap)."""
    info = ModelInfo(id=card.model_id, location="local", context_window=None, owned_by="smallfleet-specialist")
    if card.kind == "classifier":
        from smallfleet.backends.classifier import ClassifierBackend

        return ClassifierBackend(info, registry.file(card, "model"), encoder)  # type: ignore[arg-type]
    if card.kind == "lora":
        from smallfleet.backends.llamacpp import LlamaCppBackend, LlamaCppOptions

        n_ctx = int(card.hyperparameters.get("n_ctx", 2048))
        # A merged GGUF (base + adapter folded into one file) decodes at the base's speed; older versions
        # have only the adapter, served on top of the base file.
        options = (LlamaCppOptions(path=registry.file(card, "model"), n_ctx=n_ctx) if "model" in card.files else
                   LlamaCppOptions(path=Path(card.base["path"]), lora_path=registry.file(card, "adapter"), n_ctx=n_ctx))
        return LlamaCppBackend(card.model_id, options, ModelInfo(id=card.model_id, location="local",
                                                                  context_window=options.n_ctx,
                                                                  owned_by="smallfleet-specialist"))
    raise ConfigError(f"specialist {card.model_id}: unknown kind {card.kind!r}")


def with_specialist(spec: ContractSpec, card: Card | None) -> ContractSpec:
    """The contract as served: the specialist (if any) in front of the declared ladder."""
    if card is None:
        return spec
    first = Rung(model=card.model_id, timeout_s=60.0, accept=UNCALIBRATED,
                 prompt=card.hyperparameters.get("prompt", "contract"))
    return spec.model_copy(update={"ladder": [first, *spec.ladder]})


@dataclass
class Promotions:
    """Keeps a router's contracts in step with promoted specialists and calibrated rules."""

    router: Router
    declared: dict[str, ContractSpec]
    home: Path
    registry: SpecialistRegistry = field(init=False)
    thresholds: ThresholdStore = field(init=False)
    _served: dict[str, tuple[str | None, int]] = field(default_factory=dict)  # contract -> (version, rules mtime)
    fleet_digest: str = ""  # of the whole fleet file: part of every contract's served version
    on_serve: Callable[[str, str], None] | None = None  # (contract, version) after each swap (metrics)

    def __post_init__(self) -> None:
        self.registry = SpecialistRegistry(self.home)
        self.thresholds = ThresholdStore(self.home)

    def _rules_mtime(self, contract: str) -> int:
        path = self.thresholds.path(contract)
        return path.stat().st_mtime_ns if path.is_file() else 0

    def _load_contract(self, spec: ContractSpec, card: Card | None) -> Contract:
        served = with_specialist(spec, card)
        contract = Contract.load(served, self.thresholds.load(spec.name))
        # What the answers depend on: the served spec, the specialist, the calibrated rules, the predictor and the
        # fleet file (the models behind the rung ids). Cached answers key on it.
        path = predictor_path(self.home, spec.name, served.ladder[0].model)
        predictor = path.stat().st_mtime_ns if path.is_file() else 0
        contract.version = hashlib.sha256(json.dumps([served.model_dump(mode="json"), card.version if card else None,
                                                      self._rules_mtime(spec.name), predictor,
                                                      self.fleet_digest]).encode()).hexdigest()[:16]
        if path.is_file():
            contract.predictor, contract.skip_below = TextPredictor.load(path), PREDICTOR_SKIP_BELOW
        return contract

    def _entry(self, card: Card) -> None:
        fleet: Fleet = self.router.fleet
        if card.model_id not in fleet.entries():
            backend = specialist_backend(self.registry, card, self.encoder() if card.kind == "classifier" else None)
            fleet.add(FleetEntry(backend, Admission(card.model_id, 1, 64, 30.0)))

    def encoder(self):  # noqa: ANN201 - an embeddings.Encoder
        """The one sentence encoder of this gateway (classifier specialists, knowledge bases, extractive rungs),
        loaded on first use: the fleet's."""
        return self.router.fleet.encoder.get()

    def refresh(self) -> list[str]:
        """Swap in every contract whose promoted version or calibrated rules changed; the names swapped."""
        changed = []
        for name, spec in self.declared.items():
            try:
                card = self.registry.promoted(name)
            except SmallfleetError as exc:  # a promoted version whose files are gone: keep serving as before
                log.error("contract %s: promoted specialist unavailable (%s); keeping the current ladder", name, exc)
                continue
            key = (card.version if card else None, self._rules_mtime(name))
            if self._served.get(name) == key and name in self.router.contracts:
                continue
            if card is not None:
                self._entry(card)
            self.router.contracts[name] = self._load_contract(spec, card)  # one assignment: the swap
            if self.router.cache is not None and name in self._served:  # answers of the old ladder: gone
                self.router.cache.invalidate(name)
            self._served[name] = key
            changed.append(name)
            if self.on_serve is not None:
                self.on_serve(name, key[0] or "declared")
        return changed

    def served_versions(self) -> dict[str, str]:
        """Contract -> the specialist version it serves ('declared': none promoted)."""
        return {name: key[0] or "declared" for name, key in self._served.items()}

    async def watch(self, interval_s: float = 2.0) -> None:
        """Refresh forever (the gateway's background task); loading a model runs off the event loop."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                swapped = await asyncio.to_thread(self.refresh)
            except Exception:  # a broken specialist must never take the gateway down
                log.exception("refreshing promoted specialists failed; serving the current contracts")
                continue
            for name in swapped:
                log.info("contract %s now served with ladder %s", name,
                         [r.model for r in self.router.contracts[name].spec.ladder])
