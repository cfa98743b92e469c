"""Calibrated accept rules, stored per contract under SMALLFLEET_HOME/calibration/<contract>.json.

They override the fleet file's `accept` rules for the rungs they name, so calibration never rewrites
the user's YAML; deleting the file returns to the declared rules.
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

    def load(self, contract: str) -> dict[int, AcceptRule]:
        path = self.path(contract)
        if not path.is_file():
            return {}
        data = json.loads(path.read_text())
        return {int(i): AcceptRule(**rule) for i, rule in data.get("rungs", {}).items()}

    def save(self, contract: str, rungs: dict[int, AcceptRule], report: dict[str, Any]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        payload = {"contract": contract, "calibrated_at": time.time(),
                   "rungs": {str(i): rule.model_dump(exclude_none=True) for i, rule in rungs.items()},
                   "report": report}
        path = self.path(contract)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=2))
        tmp.replace(path)
        return path
