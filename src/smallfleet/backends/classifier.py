"""A classifier specialist served as a backend: the answer is its predicted class, the confidence its probability.

It reads the last user message (the contract's input: a classifier needs no instructions or
examples), predicts every field, and returns the answer in the contract's own form (the chosen
option, or the JSON object). Each field becomes one "token" whose log-probability is the class
probability's log and whose alternative is the runner-up class, so `mean_logprob`, `min_logprob`
and `min_margin` mean for it what they mean for a language model's deciding tokens. Prediction runs
on a worker thread (about a few milliseconds on CPU), never on the event loop.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from smallfleet.backends.base import (
    Backend,
    ChatMessage,
    Delta,
    Generation,
    ModelInfo,
    SamplingParams,
    Timings,
    TokenLogprob,
    TopLogprob,
)
from smallfleet.constrain.spec import Constraint
from smallfleet.embeddings import Encoder
from smallfleet.errors import InvalidRequest
from smallfleet.specialists.classifier import EmbeddingClassifier


def _log(p: float) -> float:
    return math.log(p) if p > 0 else -math.inf


class ClassifierBackend(Backend):
    """Serves one `EmbeddingClassifier` (a pickled file) with its own encoder and worker thread."""

    def __init__(self, info: ModelInfo, path: Path, encoder: Encoder | None = None) -> None:
        self.info = info
        self.classifier = EmbeddingClassifier.load(path)
        self._encoder = encoder or Encoder()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"classifier-{info.id}")

    def _predict(self, text: str) -> Generation:
        started = time.perf_counter()
        prediction = self.classifier.predict([text], self._encoder.encode([text]))[0]
        layout = self.classifier.layout
        logprobs = []
        for name in layout.fields:
            value, p = layout.display(prediction.values[name]), prediction.probability[name]
            top = [TopLogprob(value, _log(p))]
            runner = prediction.runner_up[name]
            if runner is not None:
                top.append(TopLogprob(layout.display(runner[0]), _log(runner[1])))
            logprobs.append(TokenLogprob(value, _log(p), tuple(top)))
        elapsed = time.perf_counter() - started
        return Generation(self.info.id, layout.render(prediction.values), "stop", len(text.split()), len(logprobs),
                          tuple(logprobs), Timings(elapsed, elapsed))

    async def stream(self, messages: tuple[ChatMessage, ...], params: SamplingParams,
                     constraint: Constraint | None = None) -> AsyncIterator[Delta | Generation]:
        text = next((m.content for m in reversed(messages) if m.role == "user"), None)
        if text is None:
            raise InvalidRequest(f"model {self.info.id!r} classifies the last user message; there is none")
        gen = await asyncio.get_running_loop().run_in_executor(self._executor, self._predict, text)
        yield Delta(gen.text, gen.logprobs)
        yield gen

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False)
