"""CLINC150: real user requests to a task assistant, 150 intents plus out-of-scope ("oos").

Larson et al., "An Evaluation Dataset for Intent Classification and Out-of-Scope Prediction"
(EMNLP 2019), github.com/clinc/oos-eval; Creative Commons Attribution 3.0 (LICENSE and README.md
beside the data, in `workload/data/clinc150/`). Shipped inside the package (gzip, 280 kB) so the
benchmark runs offline on a fresh clone. Splits: train 15,000 (+100 oos), val 3,000 (+100 oos),
test 4,500 (+1,000 oos).
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from importlib import resources

OOS = "oos"
ATTRIBUTION = ("CLINC150 (Larson et al., EMNLP 2019, github.com/clinc/oos-eval), CC BY 3.0; "
               "see smallfleet/workload/data/clinc150/")


@dataclass(frozen=True)
class Query:
    text: str
    intent: str


def load() -> dict[str, list[Query]]:
    """Every split of the full set: train, val, test, oos_train, oos_val, oos_test."""
    path = resources.files("smallfleet.workload") / "data" / "clinc150" / "data_full.json.gz"
    raw = json.loads(gzip.decompress(path.read_bytes()))
    return {split: [Query(text, intent) for text, intent in items] for split, items in raw.items()}


def intents(data: dict[str, list[Query]]) -> list[str]:
    """The 150 intents, sorted, then "oos"."""
    return sorted({q.intent for q in data["train"]}) + [OOS]


def traffic(data: dict[str, list[Query]], n: int, seed: int = 0) -> list[Query]:
    """`n` requests drawn from the train splits (in scope and out of scope), shuffled: cold-start traffic."""
    pool = data["train"] + data["oos_train"]
    return random.Random(seed).sample(pool, n)


def test_queries(data: dict[str, list[Query]]) -> list[Query]:
    """The test split: 4,500 in-scope requests and 1,000 out-of-scope ones."""
    return data["test"] + data["oos_test"]
