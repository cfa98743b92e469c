"""Read a GGUF file's metadata (key-value header) without loading the model or its big arrays.

GGUF layout (little-endian; https://github.com/ggml-org/ggml/blob/master/docs/gguf.md):
magic `GGUF`, uint32 version, uint64 tensor count, uint64 key-value count, then the pairs:
a string key (uint64 length + UTF-8 bytes), a uint32 value type and the value. Types 0..12 are
u8, i8, u16, i16, u32, i32, f32, bool, string, array (uint32 element type, uint64 count,
elements), u64, i64, f64.

Only the header is read. Arrays (the tokenizer's vocabulary and merges: 150k+ entries) are skipped
by seeking and reported as `GGUFArray(element_type, length)`, never materialised.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from smallfleet.models.errors import NotGGUF

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
_MAX_STRING = 64 * 1024 * 1024  # a longer metadata string means the file is corrupt
_MAX_KV = 1_000_000

# general.file_type: llama.cpp's `llama_ftype` enum -> the usual quantisation name.
FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 4: "Q4_1_SOME_F16", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
    10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS",
    24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS",
    31: "IQ1_M", 32: "BF16", 33: "Q4_0_4_4", 34: "Q4_0_4_8", 35: "Q4_0_8_8", 36: "TQ1_0", 37: "TQ2_0",
    38: "MXFP4_MOE",
}
_FTYPE_GUESSED = 1024  # llama.cpp ORs this flag in when it guessed the type

# value type -> (name, struct code) for fixed-size scalars
_SCALARS: dict[int, tuple[str, str]] = {
    0: ("u8", "B"), 1: ("i8", "b"), 2: ("u16", "H"), 3: ("i16", "h"), 4: ("u32", "I"), 5: ("i32", "i"),
    6: ("f32", "f"), 7: ("bool", "?"), 10: ("u64", "Q"), 11: ("i64", "q"), 12: ("f64", "d"),
}
_STRING, _ARRAY = 8, 9

Scalar = int | float | bool | str


@dataclass(frozen=True)
class GGUFArray:
    """An array value that was skipped, not read: its element type name and its length."""

    element_type: str
    length: int


Value = Scalar | GGUFArray


@dataclass(frozen=True)
class GGUFInfo:
    """What `models add` and `models` listings need to know about a GGUF file."""

    path: Path
    version: int
    tensor_count: int
    architecture: str | None
    name: str | None
    context_length: int | None
    file_type: int | None
    quantisation: str | None
    license: str | None
    has_chat_template: bool
    metadata: dict[str, Value] = field(default_factory=dict, compare=False, repr=False)


def is_gguf(path: Path) -> bool:
    """True when the file starts with the GGUF magic."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def quantisation_name(file_type: int | None) -> str | None:
    """`general.file_type` as a name (15 -> "Q4_K_M"); unknown values as `ftype N`."""
    if file_type is None:
        return None
    base = file_type & ~_FTYPE_GUESSED
    return FILE_TYPES.get(base, f"ftype {base}")


def read_gguf_info(path: Path) -> GGUFInfo:
    """The summary of `path`'s metadata; `NotGGUF` (one line) when it is not a readable GGUF."""
    version, tensors, metadata = read_metadata(path)
    arch = _text(metadata.get("general.architecture"))
    context = metadata.get(f"{arch}.context_length") if arch else None
    file_type = metadata.get("general.file_type")
    file_type = int(file_type) if isinstance(file_type, int) and not isinstance(file_type, bool) else None
    return GGUFInfo(
        path=path,
        version=version,
        tensor_count=tensors,
        architecture=arch,
        name=_text(metadata.get("general.name")),
        context_length=int(context) if isinstance(context, int) and not isinstance(context, bool) else None,
        file_type=file_type,
        quantisation=quantisation_name(file_type),
        license=_text(metadata.get("general.license")),
        has_chat_template=isinstance(metadata.get("tokenizer.chat_template"), str),
        metadata=metadata,
    )


def read_metadata(path: Path) -> tuple[int, int, dict[str, Value]]:
    """(version, tensor count, key -> value) from the header; arrays come back as `GGUFArray`."""
    try:
        with open(path, "rb", buffering=1 << 16) as f:
            return _Reader(f, path).header()
    except OSError as exc:
        raise NotGGUF(f"{path}: cannot read: {exc.strerror or exc}") from None


def _text(value: Value | None) -> str | None:
    return value if isinstance(value, str) else None


class _Reader:
    """Sequential reader over one open file; every short read is a `NotGGUF` naming the file."""

    def __init__(self, f: BinaryIO, path: Path) -> None:
        self.f = f
        self.path = path
        self.endian = "<"
        self.size = os.fstat(f.fileno()).st_size

    def header(self) -> tuple[int, int, dict[str, Value]]:
        if self._read(4, "magic") != GGUF_MAGIC:
            raise NotGGUF(f"{self.path}: not a GGUF file (it does not start with the GGUF magic)")
        raw_version = self._read(4, "version")
        version = struct.unpack("<I", raw_version)[0]
        if version not in SUPPORTED_VERSIONS and struct.unpack(">I", raw_version)[0] in SUPPORTED_VERSIONS:
            self.endian, version = ">", struct.unpack(">I", raw_version)[0]  # a big-endian GGUF
        if version not in SUPPORTED_VERSIONS:
            raise NotGGUF(f"{self.path}: GGUF version {version} is not supported (only 2 and 3)")
        tensors = self._scalar("Q", "tensor count")
        count = self._scalar("Q", "key-value count")
        if count > _MAX_KV:
            raise NotGGUF(f"{self.path}: corrupt GGUF header ({count} key-value pairs)")
        metadata: dict[str, Value] = {}
        for _ in range(count):
            key = self._string("key")
            metadata[key] = self._value(self._scalar("I", f"type of {key}"), key)
        return version, tensors, metadata

    def _read(self, n: int, what: str) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise NotGGUF(f"{self.path}: truncated GGUF header (while reading {what})")
        return data

    def _scalar(self, code: str, what: str) -> int | float | bool:
        fmt = self.endian + code
        return struct.unpack(fmt, self._read(struct.calcsize(fmt), what))[0]

    def _string(self, what: str) -> str:
        length = self._scalar("Q", what)
        if length > _MAX_STRING:
            raise NotGGUF(f"{self.path}: corrupt GGUF header ({what}: string of {length} bytes)")
        return self._read(length, what).decode("utf-8", errors="replace")

    def _value(self, kind: int, key: str) -> Value:
        if kind in _SCALARS:
            return self._scalar(_SCALARS[kind][1], key)
        if kind == _STRING:
            return self._string(key)
        if kind == _ARRAY:
            element = self._scalar("I", key)
            length = self._scalar("Q", key)
            self._skip_array(element, length, key)
            return GGUFArray(_type_name(element), length)
        raise NotGGUF(f"{self.path}: corrupt GGUF header ({key}: unknown value type {kind})")

    def _skip_array(self, element: int, length: int, key: str) -> None:
        if element in _SCALARS:
            self._skip(length * struct.calcsize(_SCALARS[element][1]), key)
        elif element == _STRING:
            for _ in range(length):
                self._skip(self._scalar("Q", key), key)
        elif element == _ARRAY:
            for _ in range(length):
                self._skip_array(self._scalar("I", key), self._scalar("Q", key), key)
        else:
            raise NotGGUF(f"{self.path}: corrupt GGUF header ({key}: unknown array element type {element})")

    def _skip(self, n: int, what: str) -> None:
        if n <= 4096:
            self._read(n, what)
            return
        if self.f.tell() + n > self.size:
            raise NotGGUF(f"{self.path}: truncated GGUF header (while reading {what})")
        self.f.seek(n, 1)


def _type_name(kind: int) -> str:
    if kind in _SCALARS:
        return _SCALARS[kind][0]
    return {_STRING: "string", _ARRAY: "array"}.get(kind, f"type {kind}")
