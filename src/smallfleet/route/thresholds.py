"""Calibrated accept rules, stored per contract under SMALLFLEET_HOME/calibration/<contract>.json.

Rules are keyed by the *model* they were fitted on (a rung's model id, a specialist's versioned id
such as `triage-specialist@v3`), never by rung position: when a promoted specialist becomes the
first rung, the models below it keep their own thresholds and the new model starts uncalibrated
instead of silently inheriting the old first rung's. They override the fleet file's `accept` rules
for the models they name, so calibration never rewrites the user's YAML; deleting the file returns
to the declared rules. Files written before rules were keyed by model (`rungs`: index -> rule) are
read through the model names their report recorded; an index whose model is unknown is dropped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from smallfleet.contracts.spec import AcceptRule


class ThresholdStore:
    def __init__(self, home: Path) -> None:
        self.folder = home / "calibration"

    def path(self, contract: str) -> Path:
        return self.folder / f"{contract}.json"

    def _read(self, contract: str) -> dict[str, Any]:
        path = self.path(contract)
        return json.loads(path.read_text()) if path.is_file() else {}

    def load(self, contract: str) -> dict[str, AcceptRule]:
        """The calibrated rule of every model calibrated for `contract`, by model id."""
        data = self._read(contract)
        if "models" in data:
            return {model: AcceptRule(**rule) for model, rule in data["models"].items()}
        names = {str(r.get("rung")): r.get("model") for r in data.get("report", {}).get("rungs", [])}
        return {names[i]: AcceptRule(**rule) for i, rule in data.get("rungs", {}).items() if names.get(i)}

    def save(self, contract: str, rules: dict[str, AcceptRule], report: dict[str, Any],
             merge: bool = False) -> Path:
        """Store `rules` (model id -> rule); with `merge`, models calibrated earlier and not in `rules` keep theirs."""
        self.folder.mkdir(parents=True, exist_ok=True)
        kept = {m: r.model_dump(exclude_none=True) for m, r in self.load(contract).items()} if merge else {}
        payload = {"contract": contract, "calibrated_at": time.time(),
                   "models": {**kept, **{m: rule.model_dump(exclude_none=True) for m, rule in rules.items()}},
                   "report": report}
        path = self.path(contract)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=2))
        tmp.replace(path)
        return path
