"""Reading GGUF metadata: our header reader on hand-written files and on the real embedded SmolLM2."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from smallfleet.models.errors import NotGGUF
from smallfleet.models.gguf_info import GGUFArray, is_gguf, quantisation_name, read_gguf_info, read_metadata
from tests.models.helpers import STRING, U32, U64, gguf_bytes, write_tiny_gguf


def test_a_tiny_gguf_is_read(tmp_path: Path) -> None:
    info = read_gguf_info(write_tiny_gguf(tmp_path / "tiny.gguf"))
    assert (info.version, info.tensor_count) == (3, 0)
    assert info.architecture == "llama" and info.name == "Tiny Test Model" and info.license == "mit"
    assert info.context_length == 2048
    assert info.file_type == 15 and info.quantisation == "Q4_K_M"
    assert info.has_chat_template
    # arrays are skipped, not materialised, and the keys after them are still read correctly
    assert info.metadata["tokenizer.ggml.tokens"] == GGUFArray("string", 5000)
    assert info.metadata["tokenizer.ggml.token_type"] == GGUFArray("i32", 5000)
    assert info.metadata["tokenizer.ggml.add_bos_token"] is False
    assert info.metadata["llama.rope.freq_base"] == pytest.approx(10000.0)
    assert info.metadata["general.quantization_version"] == 2


def test_missing_keys_are_none(tmp_path: Path) -> None:
    path = tmp_path / "bare.gguf"
    path.write_bytes(gguf_bytes([("general.architecture", STRING, "qwen2"), ("qwen2.context_length", U64, 32768)],
                                version=2))
    info = read_gguf_info(path)
    assert info.version == 2 and info.context_length == 32768
    assert info.quantisation is None and info.license is None and info.name is None and not info.has_chat_template


@pytest.mark.parametrize(("file_type", "name"), [
    (0, "F32"), (1, "F16"), (3, "Q4_1"), (7, "Q8_0"), (15, "Q4_K_M"), (18, "Q6_K"), (32, "BF16"),
    (1024 + 15, "Q4_K_M"), (999, "ftype 999"),
])
def test_file_types_map_to_names(file_type: int, name: str) -> None:
    assert quantisation_name(file_type) == name


def test_not_a_gguf_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, I am not a model\n")
    assert not is_gguf(path)
    with pytest.raises(NotGGUF, match=r"notes\.txt: not a GGUF file") as caught:
        read_gguf_info(path)
    assert "\n" not in caught.value.message


@pytest.mark.parametrize("cut", [3, 10, 30, 200, 40_000])
def test_a_truncated_header_is_refused(tmp_path: Path, cut: int) -> None:
    whole = write_tiny_gguf(tmp_path / "whole.gguf").read_bytes()
    assert cut < len(whole)
    path = tmp_path / "cut.gguf"
    path.write_bytes(whole[:cut])
    with pytest.raises(NotGGUF, match="truncated GGUF header|not a GGUF file"):
        read_gguf_info(path)


def test_unsupported_version_and_corrupt_types_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "v1.gguf"
    path.write_bytes(gguf_bytes([("general.architecture", STRING, "llama")], version=1))
    with pytest.raises(NotGGUF, match="GGUF version 1 is not supported"):
        read_gguf_info(path)
    bad = bytearray(gguf_bytes([("general.file_type", U32, 3)]))
    type_at = len(bad) - 4 - 4  # the uint32 type sits just before the 4-byte value
    bad[type_at:type_at + 4] = (77).to_bytes(4, "little")
    path.write_bytes(bytes(bad))
    with pytest.raises(NotGGUF, match="unknown value type 77"):
        read_metadata(path)


def test_the_embedded_smollm2_metadata() -> None:
    from smallfleet.backends.embedded import embedded_gguf_path

    started = time.perf_counter()
    info = read_gguf_info(embedded_gguf_path())
    elapsed = time.perf_counter() - started
    assert info.architecture == "llama"
    assert info.quantisation == "Q4_1" and info.file_type == 3
    assert info.context_length == 8192  # llama.context_length in the file
    assert info.has_chat_template
    assert info.license == "apache-2.0"
    assert info.tensor_count == 272
    assert info.metadata["tokenizer.ggml.tokens"] == GGUFArray("string", 49152)  # skipped, not read
    assert elapsed < 2.0  # header only: the 49k-token vocabulary is seeked over
