"""`bench export`: a LoRA specialist as base + adapter and as merged GGUFs, compared on the frozen test split."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from smallfleet.backends.embedded import embedded_gguf_path
from smallfleet.cli.main import app
from smallfleet.config.settings import Settings
from smallfleet.distill.dataset import Example, FrozenTest
from smallfleet.distill.loop import distill_folder
from smallfleet.errors import SmallfleetError
from smallfleet.evals.demo import gold_reference
from smallfleet.evals.export_bench import run_export_bench
from smallfleet.specialists.registry import Card, SpecialistRegistry
from smallfleet.workload import documents
from tests.distill.test_merge import _adapter

pytestmark = pytest.mark.model


def _home(tmp_path: Path, kind: str = "lora") -> Settings:
    settings = Settings(home=tmp_path / "home", config_path=None)
    registry = SpecialistRegistry(settings.home)
    with registry.draft("invoice-header") as (version, work):
        files = {"model": "model.pkl"}
        if kind == "lora":
            _adapter(work / "adapter.gguf", range(30))
            files = {"adapter": "adapter.gguf"}
        registry.publish(work, Card("invoice-header", version, kind, files,
                                    base={"model": "smollm2-135m", "path": str(embedded_gguf_path())},
                                    hyperparameters={"prompt": "input", "n_ctx": 1024}))
    items = [d.header() for d in documents.generate_documents(3, seed=5)]
    FrozenTest(distill_folder(settings.home, "invoice-header")).freeze(
        [Example(f"t{i}", it.text, gold_reference(it), "label", 0.0) for i, it in enumerate(items)])
    return settings


def test_merged_q8_0_answers_like_the_adapter_and_every_storage_is_measured(tmp_path: Path) -> None:
    out = run_export_bench(_home(tmp_path), "invoice-header", qtypes=("q8_0",), limit=2, decode_tokens=8, rounds=1)
    assert out["version"] == "v1" and out["test_items"] == 2 and set(out["storage"]) == {"adapter", "q8_0"}
    merged, adapter = out["storage"]["q8_0"], out["storage"]["adapter"]
    base_bytes = embedded_gguf_path().stat().st_size
    assert merged["merged_types"] == {"Q8_0": 60} and merged["bytes"] > base_bytes  # 8-bit matrices where Q4_1 was
    assert adapter["bytes"] > base_bytes and adapter["merged_types"] == {}
    assert merged["same_as_adapter"] == 1.0  # an 8-bit merge of this adapter keeps its greedy answers
    assert merged["decode_ratio_vs_base"] > 0 and adapter["decode_ratio_vs_base"] > 0
    assert 0 <= merged["exact_count"] <= 2


def test_what_cannot_be_compared_is_a_clear_error(tmp_path: Path) -> None:
    settings = _home(tmp_path, kind="classifier")
    with pytest.raises(SmallfleetError, match="no LoRA specialist"):
        run_export_bench(settings, "invoice-header")
    with pytest.raises(SmallfleetError, match="classifier specialist"):
        run_export_bench(settings, "invoice-header", version="v1")
    with pytest.raises(SmallfleetError, match="storage types are"):
        run_export_bench(settings, "invoice-header", qtypes=("q4_k",))


def test_the_cli_prints_one_line_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMALLFLEET_HOME", str(tmp_path / "empty"))
    result = CliRunner().invoke(app, ["bench", "export", "invoice-header", "--storage", "q4_k"])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "storage types are" in result.output
    result = CliRunner().invoke(app, ["bench", "export", "invoice-header"])
    assert result.exit_code == 1 and "no LoRA specialist" in result.output
