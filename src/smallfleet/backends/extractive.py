"""An extractive answerer served as a backend: a grounded contract's quoted answer chosen by sentence
embeddings, with no language model at all.

It answers grounded contracts in the `quoted` style (`kb.grounded`): from the composed input (passages
behind their ids, then the question) and the per-request grammar it takes the first passage in retrieval
order that has a quotable sentence (almost always the top-ranked one) and returns the quote the grammar admits for that passage (a sentence, or two consecutive sentences)
whose embedding is closest to the question's, citing that passage. When even the best quote is far from the question (cosine under
`not_found_below`) it answers the explicit not-found. The answer is one of the options the per-request
grammar enumerates, so it passes the contract's check like any other rung's.

Its one "token" carries a probability, so `min_mean_logprob` and `min_margin` mean for it what they mean for
a language model's deciding token and calibrate the same way: the chance that the passage answers at all
(a logistic of the best cosine around `not_found_below`, with scale `temperature`) times the chosen
quote's share of a softmax over the quotes' cosines (quotes overlapping the choice count as the choice);
a not-found answer carries the complement of the first factor. The runner-up is the best quote that does
not overlap the choice, or not-found. A few milliseconds per
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
from smallfleet.errors import BackendError, InvalidRequest, SmallfleetError
from smallfleet.kb import grounded


def _log(p: float) -> float:
    return math.log(p) if p > 1e-300 else -690.8  # log(1e-300): finite, so signals and traces stay numbers


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
        options = grounded.quoted_options(constraint.schema) if isinstance(constraint, JsonSchemaConstraint) else None
        if options is None or grounded.QUESTION_MARKER not in composed:
            raise InvalidRequest(f"model {self.info.id!r} answers grounded contracts in the quoted style "
                                 "(grounding.answer: quoted) only; this request is not one")
        pid, quotes = options[0] if options else (None, [])
        best_cosine, cosines = -1.0, np.zeros(0, np.float32)
        if quotes:
            vectors = np.asarray(self._encoder().encode([grounded.question_of(composed), *quotes]))  # type: ignore[attr-defined]
            cosines = vectors[1:] @ vectors[0]
            best_cosine = float(cosines.max())
        # The chance that the passage answers at all: 1/2 at the threshold, steeper with a lower temperature.
        found = 1.0 / (1.0 + math.exp(-(best_cosine - self.not_found_below) / self.temperature))
        not_found = TopLogprob(grounded.NOT_FOUND, _log(1.0 - found))
        if best_cosine >= self.not_found_below:
            best = int(cosines.argmax())
            choice = quotes[best]
            weights = np.exp((cosines - best_cosine) / self.temperature)
            weights /= weights.sum()
            # A quote and a pair holding it say the same thing: they count as one answer, and the runner-up is
            # the best quote that does not overlap the choice (or not-found, if that is likelier).
            same = [i for i, q in enumerate(quotes) if q in choice or choice in q]
            chosen = TopLogprob(choice, _log(found * float(weights[same].sum())))
            others = [i for i in np.argsort(-cosines) if int(i) not in same]
            runner = TopLogprob(quotes[int(others[0])], _log(found * float(weights[int(others[0])]))) if others \
                else not_found
            if runner.logprob < not_found.logprob:
                runner = not_found
            text = json.dumps({"answer": choice, "citations": [pid]}, ensure_ascii=False)
        else:
            chosen = not_found
            runner = TopLogprob(quotes[int(cosines.argmax())], _log(found)) if quotes else None
            text = json.dumps({"answer": grounded.NOT_FOUND, "citations": []})
        top = (chosen,) + ((runner,) if runner is not None else ())
        elapsed = time.perf_counter() - started
        return Generation(self.info.id, text, "stop", len(composed.split()), 1,
                          (TokenLogprob(chosen.token, chosen.logprob, top),), Timings(elapsed, elapsed))

    async def stream(self, messages: tuple[ChatMessage, ...], params: SamplingParams,
                     constraint: Constraint | None = None) -> AsyncIterator[Delta | Generation]:
        text = next((m.content for m in reversed(messages) if m.role == "user"), None)
        if text is None:
            raise InvalidRequest(f"model {self.info.id!r} answers the last user message; there is none")
        try:
            gen = await asyncio.get_running_loop().run_in_executor(self._executor, self.answer, text, constraint)
        except SmallfleetError:
            raise
        except Exception as exc:  # the encoder failed: a backend failure (502), never a crash of the request
            raise BackendError(f"model {self.info.id!r} failed: {type(exc).__name__}: {exc}") from exc
        yield Delta(gen.text, gen.logprobs)
        yield gen

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False)
