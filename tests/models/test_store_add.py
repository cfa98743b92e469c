"""The store's registry and `add_local`: atomic writes, lookups with hints, local GGUFs registered in place."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from smallfleet.errors import ConfigError
from smallfleet.models.add import add_local
from smallfleet.models.errors import ModelNotInstalled, NotGGUF
from smallfleet.models.store import InstalledModel, ModelStore
from tests.models.helpers import write_tiny_gguf


def model(store: ModelStore, name: str, path: Path) -> InstalledModel:
    return InstalledModel(name=name, path=path, sha256="ab" * 32, size=path.stat().st_size, quantisation="Q8_0",
                          context_length=1024, license="MIT", source="test")


def test_register_get_installed_and_atomic_rewrite(store: ModelStore, tmp_path: Path) -> None:
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    a.write_bytes(b"GGUF-a")
    b.write_bytes(b"GGUF-bb")
    store.register(model(store, "zeta", a))
    store.register(model(store, "alpha", b))
    assert [m.name for m in store.installed()] == ["alpha", "zeta"]
    assert store.get("zeta") == model(store, "zeta", a) and store.get("nope") is None
    assert store.path_of("alpha") == b
    data = json.loads(store.registry_path.read_text())
    assert data["version"] == 1 and data["models"]["zeta"]["path"] == str(a)
    assert sorted(p.name for p in store.folder.iterdir()) == [".registry.lock", "registry.json"]  # no temp files
    assert ModelStore(store.home).get("alpha") == store.get("alpha")  # read from disk, not held in memory
    assert store.unregister("zeta") and not store.unregister("zeta")
    assert [m.name for m in store.installed()] == ["alpha"]


def test_path_of_says_how_to_get_a_model(store: ModelStore, tmp_path: Path) -> None:
    with pytest.raises(ModelNotInstalled) as caught:
        store.path_of("qwen2.5-coder-1.5b-instruct")
    assert caught.value.message == ("model 'qwen2.5-coder-1.5b-instruct' is not installed: "
                                    "run `smallfleet models pull qwen2.5-coder-1.5b-instruct`")
    with pytest.raises(ModelNotInstalled, match=r"^model 'my-own' is not installed"):
        store.path_of("my-own")
    gone = tmp_path / "gone.gguf"
    gone.write_bytes(b"x")
    store.register(model(store, "gone", gone))
    gone.unlink()
    with pytest.raises(ModelNotInstalled, match="registered but its file .*gone.gguf is missing"):
        store.path_of("gone")


def test_the_embedded_model_resolves_without_a_pull(store: ModelStore) -> None:
    from smallfleet.backends.embedded import embedded_gguf_path

    assert store.path_of("smollm2-135m-instruct") == embedded_gguf_path()
    assert store.installed() == []


def test_a_corrupt_registry_is_a_config_error(store: ModelStore) -> None:
    store.folder.mkdir(parents=True)
    store.registry_path.write_text("{not json")
    with pytest.raises(ConfigError, match="corrupt model registry"):
        store.installed()


def test_bad_names_are_refused(store: ModelStore, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid model name '../evil'"):
        store.register(model(store, "../evil", write_tiny_gguf(tmp_path / "t.gguf")))


def test_add_registers_a_local_gguf_in_place(store: ModelStore, tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "Tiny-Model.gguf")
    added = add_local(path, store)
    assert added.name == "Tiny-Model" and added.path == path.resolve()
    assert added.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and added.size == path.stat().st_size
    assert (added.quantisation, added.context_length, added.license) == ("Q4_K_M", 2048, "mit")
    assert added.source.startswith("local")
    assert store.get("Tiny-Model") == added
    assert not (store.folder / "Tiny-Model.gguf").exists()  # not copied by default

    other = write_tiny_gguf(tmp_path / "other.gguf")
    with pytest.raises(ConfigError, match="'Tiny-Model' is already installed .*--force"):
        add_local(other, store, name="Tiny-Model")
    assert add_local(other, store, name="Tiny-Model", force=True).path == other.resolve()


def test_add_with_copy_puts_the_file_in_the_store(store: ModelStore, tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "tiny.gguf")
    added = add_local(path, store, name="tiny-copy", copy=True)
    assert added.path == store.folder / "tiny-copy.gguf" and added.path.read_bytes() == path.read_bytes()
    assert not store.partial_for("tiny-copy").exists()


def test_add_refuses_non_gguf_and_impostors(store: ModelStore, tmp_path: Path) -> None:
    text = tmp_path / "readme.txt"
    text.write_text("not a model")
    with pytest.raises(NotGGUF, match="not a GGUF file"):
        add_local(text, store)
    with pytest.raises(ConfigError, match="no such file"):
        add_local(tmp_path / "missing.gguf", store)
    tiny = write_tiny_gguf(tmp_path / "tiny.gguf")
    with pytest.raises(ConfigError, match="is a catalogue model and this file is not it"):
        add_local(tiny, store, name="qwen2.5-coder-0.5b-instruct", copy=True)
    assert store.installed() == [] and not (store.folder / "qwen2.5-coder-0.5b-instruct.gguf").exists()
    assert not store.partial_for("qwen2.5-coder-0.5b-instruct").exists()
