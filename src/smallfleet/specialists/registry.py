"""Versioned specialists of each contract, with model cards, promotion and rollback.

```
$SMALLFLEET_HOME/specialists/<contract>/
    v1/card.json, v1/<model files>      one folder per version, written whole then renamed into place
    state.json                          {"promoted": "v2" | null, "history": [...]}
```
A version's id as a model is `<contract>-specialist@vN`. Promoting a version makes it the contract's
first rung (the runtime reads `state.json`; the fleet file is never edited); rolling back returns
to the version promoted before it, or to the fleet file's own ladder. Every promotion and rollback
is appended to the history with its reason and time. State changes take a file lock, so the CLI
and a background `distill` process never overwrite each other's change.
"""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from smallfleet.errors import NotFound, SmallfleetError

_VERSION = re.compile(r"^v(\d+)$")


def model_id(contract: str, version: str) -> str:
    return f"{contract}-specialist@{version}"


@dataclass
class Card:
    """What a specialist is and how it was made: enough to reproduce, compare and audit it."""

    contract: str
    version: str
    kind: str  # "classifier" (embeddings + logistic regression) | "gguf" (a fine-tuned language model)
    files: dict[str, str]  # role -> file name inside the version folder
    base: dict[str, Any] = field(default_factory=dict)  # base model name, path, sha256
    dataset: dict[str, Any] = field(default_factory=dict)  # hash, test hash, sizes, trace range
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)
    training_minutes: float = 0.0
    created_at: float = field(default_factory=time.time)

    @property
    def model_id(self) -> str:
        return model_id(self.contract, self.version)

    def as_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Card:
        return cls(**{k: v for k, v in data.items() if k != "model_id"})


class SpecialistRegistry:
    def __init__(self, home: Path) -> None:
        self.root = home / "specialists"

    def folder(self, contract: str, version: str | None = None) -> Path:
        return self.root / contract / version if version else self.root / contract

    def contracts(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []

    def versions(self, contract: str) -> list[Card]:
        folder = self.folder(contract)
        if not folder.is_dir():
            return []
        found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _VERSION.match(p.name))
                       and (p / "card.json").is_file())
        return [Card.from_dict(json.loads((p / "card.json").read_text())) for _, p in found]

    def card(self, contract: str, version: str) -> Card:
        path = self.folder(contract, version) / "card.json"
        if not path.is_file():
            known = ", ".join(c.version for c in self.versions(contract)) or "none"
            raise NotFound(f"contract {contract!r} has no specialist {version!r} (versions: {known})")
        return Card.from_dict(json.loads(path.read_text()))

    def file(self, card: Card, role: str) -> Path:
        return self.folder(card.contract, card.version) / card.files[role]

    @contextmanager
    def draft(self, contract: str) -> Iterator[tuple[str, Path]]:
        """A new version's number and an empty folder to write it into; it appears only if the block succeeds
        (call `publish` inside it). A failed or interrupted build leaves nothing behind."""
        folder = self.folder(contract)
        folder.mkdir(parents=True, exist_ok=True)
        with self._locked(contract):
            numbers = [int(m.group(1)) for p in folder.iterdir() if (m := _VERSION.match(p.name.lstrip(".")
                                                                                       .split(".")[0]))]
            version = f"v{max(numbers, default=0) + 1}"
            work = folder / f".{version}.partial"
            work.mkdir()
        try:
            yield version, work
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)

    def publish(self, work: Path, card: Card) -> Card:
        """Write `card` into the draft folder and move it into place as its version."""
        (work / "card.json").write_text(json.dumps(card.as_dict(), indent=2))
        work.rename(self.folder(card.contract, card.version))
        return card

    def update_card(self, card: Card) -> None:
        path = self.folder(card.contract, card.version) / "card.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(card.as_dict(), indent=2))
        tmp.replace(path)

    # promotion state -----------------------------------------------------------------------------

    def _state_path(self, contract: str) -> Path:
        return self.folder(contract) / "state.json"

    def state(self, contract: str) -> dict[str, Any]:
        path = self._state_path(contract)
        return json.loads(path.read_text()) if path.is_file() else {"promoted": None, "history": []}

    def promoted(self, contract: str) -> Card | None:
        version = self.state(contract).get("promoted")
        return self.card(contract, version) if version else None

    @contextmanager
    def _locked(self, contract: str) -> Iterator[None]:
        self.folder(contract).mkdir(parents=True, exist_ok=True)
        with open(self.folder(contract) / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write_state(self, contract: str, state: dict[str, Any]) -> None:
        path = self._state_path(contract)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(path)

    def promote(self, contract: str, version: str, reason: str) -> dict[str, Any]:
        self.card(contract, version)  # NotFound for an unknown version
        with self._locked(contract):
            state = self.state(contract)
            state["history"].append({"at": time.time(), "action": "promote", "version": version,
                                     "previous": state.get("promoted"), "reason": reason})
            state["promoted"] = version
            self._write_state(contract, state)
        return state

    def rollback(self, contract: str, reason: str) -> dict[str, Any]:
        """Return to the version promoted before the current one (or to the fleet file's ladder)."""
        with self._locked(contract):
            state = self.state(contract)
            current = state.get("promoted")
            if current is None:
                raise SmallfleetError(f"contract {contract!r} has no promoted specialist to roll back")
            earlier = [h["version"] for h in state["history"] if h["action"] == "promote" and h["version"] != current]
            back_to = next((v for v in reversed(earlier) if self._healthy(contract, state, v)), None)
            state["history"].append({"at": time.time(), "action": "rollback", "version": back_to,
                                     "previous": current, "reason": reason})
            state["promoted"] = back_to
            self._write_state(contract, state)
        return state

    @staticmethod
    def _healthy(contract: str, state: dict[str, Any], version: str) -> bool:
        """A version that was itself rolled back is not a rollback target."""
        return not any(h["action"] == "rollback" and h.get("previous") == version for h in state["history"])

    def stamp(self) -> tuple[tuple[str, int], ...]:
        """Changes whenever any contract's promotion state changes (the gateway polls it to hot-swap)."""
        out = []
        for contract in self.contracts():
            path = self._state_path(contract)
            out.append((contract, path.stat().st_mtime_ns if path.is_file() else 0))
        return tuple(out)
