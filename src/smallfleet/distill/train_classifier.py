"""Train the embedding classifier specialist on a dataset's train split (regularisation chosen on dev).

Only for contracts whose answer is a pick from fixed options (`specialists.classifier.layout_of`).
References that do not fit the layout are skipped and counted. Embedding 1,000 short requests takes
seconds on CPU and each logistic regression a second or two, so the regularisation strength C is
chosen from a small grid by dev exact match (ties: the smaller C, the simpler model).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smallfleet.distill.dataset import Dataset, Example
from smallfleet.embeddings import ENCODER, Encoder
from smallfleet.errors import SmallfleetError
from smallfleet.specialists.classifier import EmbeddingClassifier, Layout

C_GRID = (1.0, 10.0, 100.0)


@dataclass
class TrainedClassifier:
    path: Path
    hyperparameters: dict[str, Any]
    minutes: float
    dev_exact: float
    skipped: int


def _xy(layout: Layout, examples: list[Example]) -> tuple[list[str], list[dict[str, str]], int]:
    texts, answers, skipped = [], [], 0
    for e in examples:
        parsed = layout.parse(e.reference)
        if parsed is None:
            skipped += 1
            continue
        texts.append(e.input)
        answers.append(parsed)
    return texts, answers, skipped


def train_classifier(dataset: Dataset, layout: Layout, out: Path, encoder: Encoder | None = None,
                     grid: tuple[float, ...] = C_GRID) -> TrainedClassifier:
    started = time.perf_counter()
    encoder = encoder or Encoder()
    texts, answers, skipped = _xy(layout, dataset.train)
    if len(texts) < 2:
        raise SmallfleetError(f"contract {dataset.contract!r}: {len(texts)} usable training examples; "
                              "a classifier needs at least 2")
    x = encoder.encode(texts)
    dev_texts, dev_answers, dev_skipped = _xy(layout, dataset.dev)
    dev_x = encoder.encode(dev_texts) if dev_texts else np.zeros((0, x.shape[1]), dtype=np.float32)
    best: tuple[float, float, EmbeddingClassifier] | None = None
    for c in grid if dev_texts else grid[1:2]:
        with warnings.catch_warnings():  # few examples per class is the normal case here, not a mistake
            warnings.simplefilter("ignore", UserWarning)
            model = EmbeddingClassifier(layout, c=c).fit(texts, x, answers)
        exact = (sum(p.values == a for p, a in zip(model.predict(dev_texts, dev_x), dev_answers, strict=True))
                 / len(dev_answers)
                 if dev_answers else 0.0)
        if best is None or exact > best[0]:
            best = (exact, c, model)
    assert best is not None
    best[2].save(out)
    return TrainedClassifier(out, {"encoder": ENCODER, "features": "embedding + tf-idf hashed word 1-2-grams",
                                   "head": "logistic-regression", "C": best[1], "grid": list(grid),
                                   "train_examples": len(texts)},
                             (time.perf_counter() - started) / 60, best[0], skipped + dev_skipped)
