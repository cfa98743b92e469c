"""`smallfleet models add PATH`: register a GGUF file that is already on disk.

The file is checked to be a GGUF (magic and a readable header), hashed in chunks and registered
where it lies; with `copy=True` it is copied into the store first (through a partial file, like a
pull). Quantisation, context length and license come from the file's own metadata.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from smallfleet.errors import ConfigError
from smallfleet.models.catalogue import find_entry
from smallfleet.models.gguf_info import read_gguf_info
from smallfleet.models.pull import CHUNK, ProgressCallback, sha256_of
from smallfleet.models.store import InstalledModel, ModelStore, validate_name


def default_name(path: Path) -> str:
    """The model name `add` uses without `--name`: the file name without `.gguf`."""
    return path.name.removesuffix(".gguf").removesuffix(".GGUF")


def add_local(
    path: Path,
    store: ModelStore,
    *,
    name: str | None = None,
    copy: bool = False,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> InstalledModel:
    """Register the GGUF at `path` as `name` (default: its file name); returns the registry entry."""
    path = path.expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    info = read_gguf_info(path)  # NotGGUF (one line) for anything else
    chosen = name or default_name(path)
    try:
        validate_name(chosen)
    except ConfigError:
        if name is not None:
            raise
        raise ConfigError(f"cannot use {chosen!r} as a model name: pass --name NAME") from None
    existing = store.get(chosen)
    if existing is not None and not force and existing.path != path:
        raise ConfigError(f"model {chosen!r} is already installed ({existing.path}): pass --force to replace it")
    entry = find_entry(chosen, store.catalogue)

    def check(digest: str) -> None:
        if entry is not None and digest != entry.sha256:
            raise ConfigError(f"{chosen!r} is a catalogue model and this file is not it (sha256 {digest}, "
                              f"expected {entry.sha256}): choose another --name")

    if copy:
        where, source = store.file_for(chosen), f"local: copied from {path}"
        digest, size = _copy_into(path, where, store.partial_for(chosen), progress, check)
    else:
        where, source = path, "local: added with `smallfleet models add`"
        digest, size = sha256_of(path, progress)
        check(digest)
    model = InstalledModel(
        name=chosen,
        path=where,
        sha256=digest,
        size=size,
        quantisation=info.quantisation,
        context_length=info.context_length,
        license=info.license or (entry.license if entry else None),
        source=source,
    )
    store.register(model)
    return model


def _copy_into(source: Path, target: Path, partial: Path, progress: ProgressCallback | None,
               check: Callable[[str], None]) -> tuple[str, int]:
    """Copy `source` to `target` through `partial`, hashing on the way; `check(sha256)` runs before the
    rename. Nothing is left behind on failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    try:
        with open(source, "rb") as src, open(partial, "wb") as out:
            while block := src.read(CHUNK):
                out.write(block)
                digest.update(block)
                size += len(block)
                if progress is not None:
                    progress(len(block))
            out.flush()
            os.fsync(out.fileno())
        check(digest.hexdigest())
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise
    return digest.hexdigest(), size
