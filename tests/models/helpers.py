"""Builders for the model tests: real (tiny) chunk wheels pip can fetch offline, and tiny GGUF files."""

from __future__ import annotations

import base64
import hashlib
import random
import struct
import zipfile
from pathlib import Path

from smallfleet.models.catalogue import CatalogueEntry, chunk_parts

FIXTURE_VERSION = "1.0.0"
# sizes chosen so that parts span several 1 MiB read chunks, one exactly, one less
PART_SIZES = (1_572_864 + 3, 1 << 20, 12_345)


def part_bytes(n: int) -> bytes:
    """Deterministic, incompressible content of fixture part n."""
    return random.Random(n).randbytes(PART_SIZES[n - 1] if n <= len(PART_SIZES) else 100)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(folder: Path, n: int, data: bytes, version: str = FIXTURE_VERSION) -> Path:
    """A valid wheel `fixture-model-partN`: module `fixture_model_partN` with `data/partNN.bin`."""
    module = f"fixture_model_part{n}"
    dist_info = f"{module}-{version}.dist-info"
    init = (b"import os\n\ndef get_part_path():\n"
            b"    return os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'part%02d.bin')\n" % n)
    files = {
        f"{module}/__init__.py": init,
        f"{module}/data/part{n:02d}.bin": data,
        f"{dist_info}/METADATA": (f"Metadata-Version: 2.1\nName: fixture-model-part{n}\nVersion: {version}\n"
                                  "Summary: test chunk\n").encode(),
        f"{dist_info}/WHEEL": (b"Wheel-Version: 1.0\nGenerator: smallfleet-tests\nRoot-Is-Purelib: true\n"
                               b"Tag: py3-none-any\n"),
        f"{dist_info}/top_level.txt": f"{module}\n".encode(),
    }
    record = [_record_line(name, content) for name, content in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def fixture_entry(name: str = "fixture-model", count: int = 3, sha256: str | None = None,
                  size: int | None = None) -> CatalogueEntry:
    """A catalogue entry over fixture parts 1..count (the real hash and size unless overridden)."""
    whole = b"".join(part_bytes(n) for n in range(1, count + 1))
    return CatalogueEntry(
        name=name,
        description="three tiny chunk wheels built by the tests",
        upstream="tests",
        license="MIT",
        source="test wheels",
        sha256=sha256 if sha256 is not None else hashlib.sha256(whole).hexdigest(),
        size=size if size is not None else len(whole),
        quantisation="Q4_K_M",
        context_length=2048,
        parts=chunk_parts("fixture-model-part", "fixture_model_part", count, FIXTURE_VERSION),
    )


# -- GGUF -----------------------------------------------------------------------------------

U32, I32, F32, BOOL, STRING, ARRAY, U64 = 4, 5, 6, 7, 8, 9, 10


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _value(kind: int, value: object) -> bytes:
    if kind == STRING:
        return _string(value)  # type: ignore[arg-type]
    if kind == ARRAY:
        element, items = value  # type: ignore[misc]
        return struct.pack("<IQ", element, len(items)) + b"".join(_value(element, item) for item in items)
    return struct.pack("<" + {U32: "I", I32: "i", F32: "f", BOOL: "?", U64: "Q"}[kind], value)


def gguf_bytes(kv: list[tuple[str, int, object]], version: int = 3, tensors: int = 0) -> bytes:
    """A GGUF header with the given (key, type, value) pairs and no tensor data."""
    out = b"GGUF" + struct.pack("<IQQ", version, tensors, len(kv))
    for key, kind, value in kv:
        out += _string(key) + struct.pack("<I", kind) + _value(kind, value)
    return out


TINY_KV: list[tuple[str, int, object]] = [
    ("general.architecture", STRING, "llama"),
    ("general.name", STRING, "Tiny Test Model"),
    ("general.license", STRING, "mit"),
    ("llama.context_length", U32, 2048),
    ("llama.rope.freq_base", F32, 10000.0),
    ("general.file_type", U32, 15),
    ("tokenizer.ggml.tokens", ARRAY, (STRING, [f"tok{i}" for i in range(5000)])),
    ("tokenizer.ggml.token_type", ARRAY, (I32, list(range(5000)))),
    ("tokenizer.ggml.add_bos_token", BOOL, False),
    ("tokenizer.chat_template", STRING, "{% for m in messages %}{{ m['content'] }}{% endfor %}"),
    ("general.quantization_version", U32, 2),
]


def write_tiny_gguf(path: Path, kv: list[tuple[str, int, object]] | None = None) -> Path:
    path.write_bytes(gguf_bytes(TINY_KV if kv is None else kv))
    return path
