"""Fleet files name installed models with `model:`; resolved when the fleet is built, with a pull hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from smallfleet.config.fleet import LlamaCppModel, load_fleet
from smallfleet.errors import ConfigError
from smallfleet.fleet import Fleet
from smallfleet.models.add import add_local
from smallfleet.models.errors import ModelNotInstalled
from smallfleet.models.store import ModelStore
from tests.models.helpers import write_tiny_gguf


class RecordingBackend:
    """Stands in for LlamaCppBackend: records the GGUF path instead of loading a model."""

    opened: list[Path] = []

    def __init__(self, model_id: str, options, info=None) -> None:  # noqa: ANN001 - mirrors the real signature
        self.opened.append(options.path)
        self.info = info


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    import smallfleet.backends.llamacpp as llamacpp

    opened: list[Path] = []
    monkeypatch.setattr(RecordingBackend, "opened", opened)
    monkeypatch.setattr(llamacpp, "LlamaCppBackend", RecordingBackend)
    return opened


def fleet_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text("models:\n  - id: coder\n    kind: llamacpp\n" + body)
    return path


def test_model_resolves_to_the_registered_file(store: ModelStore, tmp_path: Path, recorded: list[Path]) -> None:
    gguf = write_tiny_gguf(tmp_path / "tiny.gguf")
    add_local(gguf, store, name="tiny")
    config = load_fleet(fleet_file(tmp_path, "    model: tiny\n"))
    spec = config.models[0]
    assert isinstance(spec, LlamaCppModel) and spec.model == "tiny" and spec.path is None
    Fleet.from_config(config)
    assert recorded == [gguf.resolve()]


def test_the_embedded_catalogue_model_needs_no_pull(tmp_path: Path, recorded: list[Path]) -> None:
    from smallfleet.backends.embedded import embedded_gguf_path

    Fleet.from_config(load_fleet(fleet_file(tmp_path, "    model: smollm2-135m-instruct\n")))
    assert recorded == [embedded_gguf_path()]


def test_model_and_path_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_fleet(fleet_file(tmp_path, "    model: tiny\n    path: /x/y.gguf\n"))
    assert "models[0]: model 'coder': give either path (a GGUF file) or model" in caught.value.message
    assert "not both" in caught.value.message


def test_an_unknown_model_is_refused_with_the_pull_hint(tmp_path: Path, recorded: list[Path]) -> None:
    config = load_fleet(fleet_file(tmp_path, "    model: qwen2.5-coder-1.5b-instruct\n"))  # loads: resolved lazily
    with pytest.raises(ModelNotInstalled) as caught:
        Fleet.from_config(config)
    assert "run `smallfleet models pull qwen2.5-coder-1.5b-instruct`" in caught.value.message
    with pytest.raises(ModelNotInstalled, match="model 'nobody' is not installed"):
        Fleet.from_config(load_fleet(fleet_file(tmp_path, "    model: nobody\n")))
    assert recorded == []
