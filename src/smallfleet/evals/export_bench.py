"""`smallfleet bench export`: how to store a LoRA specialist, measured side by side in one run.

A LoRA specialist can be served as the base GGUF plus its adapter GGUF (llama.cpp applies the
adapter in full precision on every token: the most faithful, the slowest), or merged into one file
whose adapted matrices are stored in some type (`specialists.merge_gguf`: `same` keeps the base's
own type, Q4_1 for the embedded SmolLM2; `q5_1`, `q8_0`, `f16` are larger and closer to the trained
weights). For each storage, on the contract's frozen test split with the router's own prompt and
constraint:

- exact match against the references, and the share of answers identical (canonical form) to the
  adapter's: the adapter is the reference for "what the trained weights say", so a merged file that
  answers differently lost something in quantisation;
- the file size, and decode speed as a ratio to the base model's, alternated in the same run (this
  machine is shared: absolute tokens/s move from run to run, the ratio much less).

The merged files are written to a temporary folder and removed afterwards; the registry is not touched.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from smallfleet.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from smallfleet.config.fleet import FleetConfig, load_fleet
from smallfleet.config.settings import Settings
from smallfleet.constrain.outcome import canonical
from smallfleet.distill.dataset import FrozenTest
from smallfleet.distill.export_check import decode_speed
from smallfleet.distill.gate import answer
from smallfleet.distill.loop import contract_spec, distill_folder
from smallfleet.errors import SmallfleetError
from smallfleet.promotion import with_specialist
from smallfleet.route.router import Contract
from smallfleet.specialists.merge_gguf import QTYPES, merge_adapter
from smallfleet.specialists.registry import Card, SpecialistRegistry


def lora_card(registry: SpecialistRegistry, contract: str, version: str | None) -> Card:
    """The named LoRA version of `contract`, or its newest LoRA version; a clear error otherwise."""
    cards = [c for c in registry.versions(contract) if c.kind == "lora"]
    if version is not None:
        card = registry.card(contract, version)
        if card.kind != "lora":
            raise SmallfleetError(f"{card.model_id} is a {card.kind} specialist: only LoRA specialists have storage types")
        return card
    if not cards:
        raise SmallfleetError(f"contract {contract!r} has no LoRA specialist (train one: smallfleet distill train "
                              f"{contract} --kinds lora)")
    return cards[-1]


def run_export_bench(settings: Settings, contract: str, version: str | None = None,
                     qtypes: tuple[str, ...] = ("same", "q5_1", "q8_0"), limit: int | None = None,
                     decode_tokens: int = 64, rounds: int = 3, config: FleetConfig | None = None) -> dict[str, Any]:
    unknown = [q for q in qtypes if q not in QTYPES]
    if unknown or not qtypes:
        raise SmallfleetError(f"storage types are {', '.join(QTYPES)}, not {', '.join(unknown) or 'none'}")
    config = config or load_fleet(settings.config_path)
    if not any(c.name == contract for c in config.contracts):
        from smallfleet.evals.demo import demo_config

        # The reference demo's contracts (its home has no fleet file); the teacher is not called here.
        demo = demo_config("http://127.0.0.1:9", 0.95)
        config = demo if any(c.name == contract for c in demo.contracts) else config
    spec = contract_spec(config, contract)
    registry = SpecialistRegistry(settings.home)
    card = lora_card(registry, contract, version)
    adapter = registry.file(card, "adapter")
    base = Path(card.base.get("path", ""))
    if not adapter.is_file() or not base.is_file():
        raise SmallfleetError(f"{card.model_id}: needs its adapter ({adapter}) and base model ({base}) on disk")
    tests = FrozenTest(distill_folder(settings.home, contract)).load()
    if not tests:
        raise SmallfleetError(f"contract {contract!r} has no frozen test split (run smallfleet distill dataset first)")
    tests = tests[:limit]
    served = with_specialist(spec, card)
    rung, checked = served.ladder[0], Contract.load(served)
    n_ctx = int(card.hyperparameters.get("n_ctx", 2048))

    out: dict[str, Any] = {"contract": contract, "version": card.version, "base": card.base.get("model"),
                           "test_items": len(tests), "decode_tokens": decode_tokens, "storage": {}}
    with tempfile.TemporaryDirectory(prefix="smallfleet-export-") as tmp:
        out["storage"] = asyncio.run(_measure(base, adapter, Path(tmp), qtypes, n_ctx, checked, rung, tests,
                                              decode_tokens, rounds))
    return out


async def _measure(base: Path, adapter: Path, tmp: Path, qtypes: tuple[str, ...], n_ctx: int, contract: Contract,
                   rung: Any, tests: list[Any], decode_tokens: int, rounds: int) -> dict[str, Any]:
    """Each storage's answers and decode speed; the adapter first (every merged file is compared with it)."""
    base_backend = LlamaCppBackend("base", LlamaCppOptions(path=base, n_ctx=n_ctx))
    rows: dict[str, Any] = {}
    reference: list[str | None] | None = None
    try:
        for name in ("adapter", *qtypes):
            if name == "adapter":
                backend = LlamaCppBackend(name, LlamaCppOptions(path=base, n_ctx=n_ctx, lora_path=adapter))
                size, types = base.stat().st_size + adapter.stat().st_size, {}
            else:
                merged = merge_adapter(base, adapter, tmp / f"{name}.gguf", qtype=name)
                backend = LlamaCppBackend(name, LlamaCppOptions(path=merged.path, n_ctx=n_ctx))
                size, types = merged.bytes, merged.types
            try:
                got = await answer(backend, contract, tests, rung)
                speed = decode_speed(base_backend, backend, tokens=decode_tokens, rounds=rounds)
            finally:
                await backend.aclose()
            reference = reference if reference is not None else got.answers
            same = sum(a is not None and b is not None and canonical(a) == canonical(b)
                       for a, b in zip(got.answers, reference, strict=True))
            exact = sum(s.agrees for s in got.samples)
            rows[name] = {"bytes": size, "merged_types": types, "exact": round(exact / len(tests), 4),
                          "exact_count": exact, "same_as_adapter": round(same / len(tests), 4),
                          "decode_ratio_vs_base": speed["ratio"], "tokens_per_s": speed["specialist_tokens_per_s"],
                          "base_tokens_per_s": speed["base_tokens_per_s"]}
    finally:
        await base_backend.aclose()
    return rows
