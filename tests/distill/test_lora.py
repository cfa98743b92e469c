"""The LoRA specialist on the real SmolLM2: prompt parity, a few training steps, adapter export, gate, serving."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from smallfleet.backends.embedded import embedded_gguf_path
from smallfleet.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from smallfleet.config.settings import Settings
from smallfleet.constrain.outcome import canonical
from smallfleet.distill.dataset import Example
from smallfleet.distill.loop import DistillOptions, run_distill
from smallfleet.distill.train_lora import LoraOptions, encode
from smallfleet.errors import ConfigError
from smallfleet.runtime import open_runtime
from smallfleet.specialists.registry import SpecialistRegistry
from smallfleet.workload import documents
from tests.distill.conftest import routed_trace
from smallfleet.trace.sqlite import SQLiteTraceStore

pytestmark = pytest.mark.model

HEADER = {"name": "header", "output": {"json_schema": documents.HEADER_SCHEMA}, "max_tokens": 64,
          "instructions": documents.HEADER_INSTRUCTIONS, "quality_target": 0.9,
          "ladder": ["smollm2-135m", "teacher"]}


@pytest.fixture
def header_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    home = tmp_path / "home"
    home.mkdir()
    fleet = home / "fleet.yaml"
    fleet.write_text(yaml.safe_dump({"models": [{"id": "smollm2-135m", "kind": "llamacpp", "n_ctx": 2048},
                                                {"id": "teacher", "kind": "fake", "location": "remote"}],
                                     "contracts": [HEADER]}))
    monkeypatch.setenv("SMALLFLEET_CONFIG", str(fleet))
    settings = Settings(home=home, config_path=fleet)
    store = SQLiteTraceStore(settings.trace_db)
    docs = [d.header() for d in documents.generate_documents(28)]
    store.append_many([routed_trace(d.text, json.dumps(d.label), "header", created_at=1000 + i)
                       for i, d in enumerate(docs)])
    store.close()
    return settings


@pytest.mark.parametrize("prompt", ["input", "bare"])
def test_training_prompts_are_the_prompts_the_served_rung_receives(header_settings: Settings, prompt: str) -> None:
    from smallfleet.contracts.spec import ContractSpec, Rung
    from smallfleet.distill.gate import answer
    from smallfleet.route.router import Contract

    contract = Contract.load(ContractSpec.model_validate(HEADER))
    backend = LlamaCppBackend("smollm2-135m", LlamaCppOptions(path=embedded_gguf_path(), n_ctx=2048))
    text = documents.generate_documents(1)[0].header().text
    [(trained_prompt, target)] = encode(backend, contract, [Example("x", text, '{"a": 1}', "label", 0.0)], prompt)
    seen: list[list[int]] = []
    render = backend.render
    backend.render = lambda *args: seen.append(render(*args)) or seen[-1]  # type: ignore[method-assign]
    asyncio.run(answer(backend, contract, [Example("x", text, "{}", "label", 0.0)], Rung(model="s", prompt=prompt)))
    assert seen == [trained_prompt]  # byte for byte the same token ids
    assert target[-1] == backend.llama.token_eos() and backend.llama.detokenize(target[:-1]) == b'{"a": 1}'
    shown = backend.llama.detokenize(trained_prompt, special=True).decode()
    assert text in shown and (("[0-9]{5}" in shown) == (prompt == "input"))  # bare: no schema text in the prompt
    asyncio.run(backend.aclose())


def test_lora_specialist_is_trained_exported_gated_and_served(header_settings: Settings) -> None:
    result = run_distill(header_settings, "header", DistillOptions(
        min_examples=8, base=False, kinds=("lora",), parity_items=2, progress=False,
        lora=LoraOptions(epochs=1, batch_size=4, max_minutes=5)))
    [candidate] = result["candidates"]
    assert candidate["kind"] == "lora" and result["version"] == "v1"
    assert candidate["export_parity"]["prompts"] == 2 and 0 <= candidate["export_parity"]["match_rate"] <= 1
    assert candidate["decode_speed"]["ratio"] > 0
    registry = SpecialistRegistry(header_settings.home)
    card = registry.card("header", "v1")
    assert registry.file(card, "adapter").is_file() and card.base["sha256"] and card.hyperparameters["steps"] >= 1
    assert registry.file(card, "model").is_file()  # the merged GGUF, which is what is served
    assert candidate["format"].startswith("merged GGUF") and candidate["bytes"] > 0
    assert result["metrics"]["candidate"]["validity"] == 1.0  # constrained: every answer valid
    registry.promote("header", "v1", "test")
    with open_runtime(header_settings) as runtime:
        contract = runtime.router.contract("header")
        assert [r.model for r in contract.spec.ladder] == ["header-specialist@v1", "smollm2-135m", "teacher"]
        assert contract.spec.ladder[0].prompt == "input"
        doc = documents.generate_documents(70)[-1].header()
        result = runtime.call(runtime.router.run("header", doc.text, shadow=True))
        first = result.attempts[0]
        assert first.model == "header-specialist@v1" and first.signals["valid"]
        assert canonical(first.output) != ""


def test_an_adapter_that_does_not_fit_the_base_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"GGUF not really")
    with pytest.raises(ConfigError, match="does not fit"):
        LlamaCppBackend("x", LlamaCppOptions(path=embedded_gguf_path(), n_ctx=512, lora_path=bogus))
