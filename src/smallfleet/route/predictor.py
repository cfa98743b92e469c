"""Pre-generation predictor: will the first rung answer this input acceptably? Learned from traces.

Features are cheap on purpose: hashed word and word-pair counts of the input (scikit-learn's
HashingVectorizer, no vocabulary to store), and a class-balanced logistic regression. A decision
costs well under a millisecond, so it can run on every request; when the predicted chance of
success is below `skip_below`, the router starts on the second rung and saves the small model's
time on inputs it would fail anyway. With a single class in the training data the predictor is a
constant (it says so in `kind`).
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class TextPredictor:
    n_features: int = 2**14
    kind: str = "untrained"
    _constant: float | None = None
    _model: object | None = None

    def _vectorizer(self):  # noqa: ANN202 - sklearn object
        from sklearn.feature_extraction.text import HashingVectorizer

        return HashingVectorizer(n_features=self.n_features, ngram_range=(1, 2), alternate_sign=False,
                                 norm="l2", lowercase=True)

    def fit(self, texts: list[str], succeeded: list[bool]) -> TextPredictor:
        from sklearn.linear_model import LogisticRegression

        labels = np.array(succeeded, dtype=int)
        if len(set(labels.tolist())) < 2:
            self._constant = float(labels[0]) if len(labels) else 0.5
            self._model, self.kind = None, "constant"
            return self
        model = LogisticRegression(max_iter=2000, class_weight="balanced", C=1.0)
        model.fit(self._vectorizer().transform(texts), labels)
        self._model, self._constant, self.kind = model, None, "hashed-ngrams+logistic-regression"
        return self

    def success_probability(self, text: str) -> float:
        if self._model is None:
            return 0.5 if self._constant is None else self._constant
        return float(self._model.predict_proba(self._vectorizer().transform([text]))[0, 1])  # type: ignore[attr-defined]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(self))

    @staticmethod
    def load(path: Path) -> TextPredictor:
        return pickle.loads(path.read_bytes())


def evaluate_predictor(texts: list[str], succeeded: list[bool], holdout: float = 0.3,
                       threshold: float = 0.5) -> dict[str, object]:
    """Fit on the first part, measure accuracy and per-decision time on the held-out rest."""
    cut = max(1, int(len(texts) * (1 - holdout)))
    predictor = TextPredictor().fit(texts[:cut], succeeded[:cut])
    test_x, test_y = texts[cut:], succeeded[cut:]
    started = time.perf_counter()
    predictions = [predictor.success_probability(t) >= threshold for t in test_x]
    per_decision_ms = (time.perf_counter() - started) * 1000 / max(1, len(test_x))
    correct = sum(p == y for p, y in zip(predictions, test_y, strict=True))
    base = max(sum(test_y), len(test_y) - sum(test_y)) / max(1, len(test_y))
    return {"kind": predictor.kind, "train": cut, "held_out": len(test_x),
            "accuracy": round(correct / len(test_x), 4) if test_x else None,
            "majority_baseline": round(base, 4) if test_x else None,
            "ms_per_decision": round(per_decision_ms, 3)}
