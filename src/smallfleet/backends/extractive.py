"""An extractive answerer served as a backend: a grounded contract's quoted answer chosen by sentence
embeddings, with no language model at all.

It answers grounded contracts in the `quoted` style (`kb.grounded`): from the composed input (passages
behind their ids, then the question) and the per-request grammar it takes the first passage, which retrieval ranked best,
and returns the quote the grammar admits for that passage (a sentence, or two consecutive sentences)
whose embedding is closest to the question's, citing that passage. When even the best quote is far from the question (cosine under
`not_found_below`) it answers the explicit not-found. The answer is one of the options the per-request
grammar enumerates, so it passes the contract's check like any other rung's.

Its one "token" carries the chosen quote's probability under a softmax of the quotes' cosines (temperature
`temperature`) and the runner-up as the alternative, so `min_mean_logprob` and `min_margin` mean for it
what they mean for a language model's deciding token and calibrate the same way. A few milliseconds per
request on CPU (one encoder call), run on a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

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
from smallfleet.constrain.spec import Constraint, JsonSchemaConstraint
from smallfleet.errors import InvalidRequest
from smallfleet.kb import grounded


class ExtractiveBackend(Backend):
    """Quotes the best-matching sentences of the top passage (see the module's docstring)."""

    def __init__(self, info: ModelInfo, encoder: Callable[[], object], not_found_below: float = 0.45,
                 temperature: float = 0.05) -> None:
        self.info = info
        self._encoder = encoder  # called on first use: an embeddings.Encoder (shared across the gateway)
        self.not_found_below = not_found_below
        self.temperature = temperature
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"extractive-{info.id}")

    def answer(self, composed: str, constraint: Constraint | None) -> Generation:
        """The quoted answer to one composed grounded input under its per-request grammar."""
        started = time.perf_counter()
        options = grounded.quoted_options(constraint.schema) if isinstance(constraint, JsonSchemaConstraint) else []
        if grounded.QUESTION_MARKER not in composed or not (options or grounded.passage_ids(composed) == []):
            raise InvalidRequest(f"model {self.info.id!r} answers grounded contracts in the quoted style "
                                 "(grounding.answer: quoted); this request is not one")
        question = grounded.question_of(composed)
        first = options[0] if options else None
        quotes = first[1] if first else []
        choice, logprob, runner = grounded.NOT_FOUND, 0.0, None
        if quotes:
            vectors = self._encoder().encode([question, *quotes])
            cosines = vectors[1:] @ vectors[0]
            order = np.argsort(-cosines)
            best = int(order[0])
            if float(cosines[best]) >= self.not_found_below:
                scaled = (cosines - cosines.max()) / self.temperature
                probs = np.exp(scaled) / np.exp(scaled).sum()
                choice, logprob = quotes[best], math.log(float(probs[best]))
                if len(order) > 1:
                    runner = (quotes[int(order[1])], math.log(max(float(probs[int(order[1])]), 1e-300)))
        if choice == grounded.NOT_FOUND:
            text = json.dumps({"answer": grounded.NOT_FOUND, "citations": []})
        else:
            text = json.dumps({"answer": choice, "citations": [first[0]]})  # type: ignore[index]
        top = [TopLogprob(choice, logprob)] + ([TopLogprob(*runner)] if runner else [])
        elapsed = time.perf_counter() - started
        return Generation(self.info.id, text, "stop", len(composed.split()), 1,
                          (TokenLogprob(choice, logprob, tuple(top)),), Timings(elapsed, elapsed))

    async def stream(self, messages: tuple[ChatMessage, ...], params: SamplingParams,
                     constraint: Constraint | None = None) -> AsyncIterator[Delta | Generation]:
        text = next((m.content for m in reversed(messages) if m.role == "user"), None)
        if text is None:
            raise InvalidRequest(f"model {self.info.id!r} answers the last user message; there is none")
        gen = await asyncio.get_running_loop().run_in_executor(self._executor, self.answer, text, constraint)
        yield Delta(gen.text, gen.logprobs)
        yield gen

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False)
