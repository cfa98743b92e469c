"""The local model store: GGUF files under `<home>/models` and a JSON registry describing them.

`<home>/models/registry.json` maps each installed model's name to its file, SHA-256, size,
quantisation, context length, license and source. The registry is rewritten whole, atomically
(temporary file, fsync, `os.replace`) under an advisory lock, so a crash or a concurrent pull
never leaves it half-written. Models added from elsewhere (`smallfleet models add`) are
registered where they lie; pulled models live in the store folder as `<name>.gguf`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from smallfleet.errors import ConfigError
from smallfleet.models.catalogue import CATALOGUE, CatalogueEntry, find_entry
from smallfleet.models.errors import ModelNotInstalled

try:  # advisory locking where the platform has it (Linux, macOS)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

REGISTRY_VERSION = 1
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class InstalledModel:
    """One registry entry: a GGUF file the fleet can name with `model:`."""

    name: str
    path: Path
    sha256: str
    size: int
    quantisation: str | None
    context_length: int | None
    license: str | None
    source: str  # "catalogue: ...", "embedded: ...", "local: added with `smallfleet models add`"

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "path": str(self.path)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> InstalledModel:
        return cls(
            name=str(data["name"]),
            path=Path(str(data["path"])),
            sha256=str(data["sha256"]),
            size=int(data["size"]),  # type: ignore[call-overload]
            quantisation=_opt_str(data.get("quantisation")),
            context_length=int(data["context_length"]) if data.get("context_length") is not None else None,  # type: ignore[call-overload]
            license=_opt_str(data.get("license")),
            source=str(data.get("source") or ""),
        )

    def file_ok(self) -> bool:
        """True when the file is still there with the registered size (a cheap check, no hashing)."""
        try:
            return self.path.is_file() and self.path.stat().st_size == self.size
        except OSError:
            return False


def validate_name(name: str) -> str:
    """A model name usable as a file name and a fleet `model:` value; `ConfigError` otherwise."""
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"invalid model name {name!r}: use letters, digits, '.', '_' and '-' "
                          "(starting with a letter or digit)")
    return name


class ModelStore:
    """Installed models of one smallfleet home. Holds no state beyond its paths: the registry is read
    from disk on every call, so several processes (a pull, a running gateway) see the same truth."""

    def __init__(self, home: Path, catalogue: tuple[CatalogueEntry, ...] = CATALOGUE) -> None:
        self.home = home
        self.catalogue = catalogue

    @property
    def folder(self) -> Path:
        """Where pulled models are written: `<home>/models`."""
        return self.home / "models"

    @property
    def registry_path(self) -> Path:
        return self.folder / "registry.json"

    def file_for(self, name: str) -> Path:
        """Where a pulled model called `name` lives."""
        return self.folder / f"{validate_name(name)}.gguf"

    def partial_for(self, name: str) -> Path:
        """The hidden file a pull writes before the model is verified."""
        return self.folder / f".{validate_name(name)}.gguf.partial"

    def installed(self) -> list[InstalledModel]:
        """Every registered model, by name."""
        return sorted(self._read().values(), key=lambda m: m.name)

    def get(self, name: str) -> InstalledModel | None:
        """The registered model called `name`, or None."""
        return self._read().get(name)

    def path_of(self, name: str) -> Path:
        """The GGUF file of an installed model; a one-line `ModelNotInstalled` that says how to get it.

        The embedded catalogue model resolves to the file inside its package even if never pulled.
        """
        model = self.get(name)
        entry = find_entry(name, self.catalogue)
        if model is not None:
            if not model.path.is_file():
                hint = f": run `smallfleet models pull {name} --force`" if entry else ""
                raise ModelNotInstalled(f"model {name!r} is registered but its file {model.path} is missing{hint}")
            return model.path
        if entry is not None and entry.embedded:
            from smallfleet.backends.embedded import embedded_gguf_path

            return embedded_gguf_path()
        if entry is not None:
            raise ModelNotInstalled(f"model {name!r} is not installed: run `smallfleet models pull {name}`")
        raise ModelNotInstalled(f"model {name!r} is not installed (not in the catalogue nor added with "
                                "`smallfleet models add PATH --name NAME`)")

    def register(self, model: InstalledModel) -> None:
        """Add or replace `model`'s entry (atomic rewrite of the registry)."""
        validate_name(model.name)
        with self._locked():
            models = self._read()
            models[model.name] = model
            self._write(models)

    def unregister(self, name: str) -> bool:
        """Drop `name`'s entry (the file is left alone); True when there was one."""
        with self._locked():
            models = self._read()
            if models.pop(name, None) is None:
                return False
            self._write(models)
            return True

    # -- internals -------------------------------------------------------------------------

    def _read(self) -> dict[str, InstalledModel]:
        try:
            text = self.registry_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(f"{self.registry_path}: cannot read: {exc.strerror or exc}") from None
        try:
            data = json.loads(text)
            return {name: InstalledModel.from_json(entry) for name, entry in data["models"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{self.registry_path}: corrupt model registry ({type(exc).__name__}: {exc})") from None

    def _write(self, models: dict[str, InstalledModel]) -> None:
        data = {"version": REGISTRY_VERSION,
                "models": {name: models[name].to_json() for name in sorted(models)}}
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".registry.", suffix=".tmp", dir=self.folder)
        try:
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the registry is as readable as the models
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.registry_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-modify-write of the registry across processes."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".registry.lock", "a") as lock:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
