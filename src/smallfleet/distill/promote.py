"""Promotion: store a version's accept rule (fitted on the dev split) under its model id, then promote it.

The order matters: a gateway that sees the promotion reads the calibration file in the same
refresh, so the version never takes traffic with no rule (and an uncalibrated specialist accepts
nothing anyway: see `promotion.UNCALIBRATED`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from smallfleet.config.fleet import load_fleet
from smallfleet.config.settings import Settings
from smallfleet.route.calibrate import Calibration, fit
from smallfleet.route.router import Contract
from smallfleet.route.thresholds import ThresholdStore
from smallfleet.specialists.registry import Card, SpecialistRegistry


def install(settings: Settings, card: Card, calibration: Calibration, dataset_hash: str, reason: str) -> dict[str, Any]:
    """Save `calibration`'s rule for `card`'s model id (other models' rules kept), then promote the version."""
    ThresholdStore(settings.home).save(card.contract, {card.model_id: calibration.rule()},
                                       {"source": f"dev split of dataset {dataset_hash[:12]}",
                                        "model": card.model_id, "calibration": calibration.as_dict()}, merge=True)
    return SpecialistRegistry(settings.home).promote(card.contract, card.version, reason)


def promote_version(settings: Settings, contract: str, version: str, reason: str) -> dict[str, Any]:
    """Recalibrate `version` on the contract's current dev split, then promote it (by hand)."""
    from smallfleet.distill.gate import answer
    from smallfleet.distill.loop import contract_spec, load_dataset
    from smallfleet.promotion import specialist_backend, with_specialist

    registry = SpecialistRegistry(settings.home)
    card = registry.card(contract, version)
    spec = contract_spec(load_fleet(settings.config_path), contract)
    dataset = load_dataset(settings, spec)

    async def dev_samples() -> list:
        backend = specialist_backend(registry, card)
        try:
            return (await answer(backend, Contract.load(spec), dataset.dev, with_specialist(spec, card).ladder[0])).samples
        finally:
            await backend.aclose()

    calibration = fit(asyncio.run(dev_samples()), spec.quality_target)
    state = install(settings, card, calibration, dataset.hash, reason)
    return {"contract": contract, "promoted": state["promoted"], "dev_samples": calibration.samples,
            "rule": calibration.rule().model_dump(exclude_none=True) if calibration.installed else "always escalate",
            "why": calibration.why}
