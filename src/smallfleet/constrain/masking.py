"""Token masks from llguidance, applied in place to a backend's logits inside its decoding loop.

`MatcherCache` compiles a grammar once per tokenizer and hands out cheap copies; `TokenMasker`
is one request's matcher: it writes the allowed-token bitmask, sets every other logit to -inf,
accepts sampled tokens and reports tokens the grammar forces (sampled by nobody, fed in a batch).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import numpy as np

from smallfleet.errors import BackendError, InvalidRequest

NEG_INF = np.float32(-np.inf)


class MatcherCache:
    """Compiled matchers by grammar text, for one tokenizer. Not thread-safe: one per engine thread."""

    def __init__(self, tokenizer: Any, max_entries: int = 256) -> None:
        self.tokenizer = tokenizer
        self._max = max_entries
        self._templates: OrderedDict[str, Any] = OrderedDict()

    def matcher(self, grammar: str) -> Any:
        from llguidance import LLMatcher

        template = self._templates.get(grammar)
        if template is None:
            template = LLMatcher(self.tokenizer, grammar, log_level=0)
            if template.is_error():
                raise InvalidRequest(f"constraint cannot be enforced: {template.get_error()}")
            self._templates[grammar] = template
            if len(self._templates) > self._max:
                self._templates.popitem(last=False)
        else:
            self._templates.move_to_end(grammar)
        return template.deep_copy()


class TokenMasker:
    """One request's constraint state during decoding."""

    def __init__(self, matcher: Any, n_vocab: int) -> None:
        self._m = matcher
        self._n_vocab = n_vocab
        self._mask = np.zeros(((n_vocab + 31) // 32,), dtype=np.int32)
        self.mask_ms: list[float] = []

    def apply(self, logits: np.ndarray) -> None:
        """Set the logits of every token the grammar forbids next to -inf (in place); the time is recorded."""
        started = time.perf_counter()
        self._m.unsafe_compute_mask_ptr(self._mask.ctypes.data, self._mask.nbytes)
        allowed = np.unpackbits(self._mask.view(np.uint8), bitorder="little")[: self._n_vocab]
        np.copyto(logits, NEG_INF, where=allowed == 0)
        self.mask_ms.append((time.perf_counter() - started) * 1000)

    def consume(self, token: int) -> None:
        if not self._m.consume_token(token):
            raise BackendError(f"constraint engine rejected token {token}: {self._m.get_error()}")

    def forced(self) -> list[int]:
        """Tokens the grammar allows as the only continuation (already consumed when returned)."""
        tokens = self._m.compute_ff_tokens()
        if tokens and not self._m.consume_tokens(tokens):
            raise BackendError(f"constraint engine rejected forced tokens: {self._m.get_error()}")
        return list(tokens)

    @property
    def stopped(self) -> bool:
        """Nothing more can follow: the constrained answer is complete."""
        return bool(self._m.is_stopped())

    @property
    def accepting(self) -> bool:
        """What was generated so far is a complete, valid answer."""
        return bool(self._m.is_accepting())
