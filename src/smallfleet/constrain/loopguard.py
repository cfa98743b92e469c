"""Steer a constrained answer out of a loop the grammar would happily allow forever.

A grammar that admits an unbounded string, array or recursive object also admits a small model
repeating itself until `max_tokens` (`"tags": ["a", "a", "a", ...`, an email of digits, a tree
nested without end, the same tool call over and over). None of the constrained-decoding engines
guard against it: the answer is valid at every step, just never finished.

`LoopGuard` watches the tokens of one answer (sampled and forced alike). When the tail of the
answer is one block of tokens repeated (a block shorter than 8 tokens seen 3 times, a longer one
seen twice in a row, at least 12 tokens in all; blocks up to 64 tokens), it steers the next sampled token out of the cycle where the grammar
leaves a way out:
1. if a JSON string is open, the tokens that close it (a `"` first);
2. otherwise the tokens that close the innermost array or object (`]` or `}` first), or end the
   answer (end-of-generation);
3. failing both, any allowed token except the one that would continue the cycle.
The choice among the kept tokens is still the model's (their logits are left as they are); only
the cycle's continuation is taken away. If the grammar allows nothing but the cycle, nothing is
changed. After steering, a fresh full cycle must be seen before it steers again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NEG_INF = np.float32(-np.inf)


@dataclass(frozen=True)
class ExitTokens:
    """Per-vocabulary token classes used to leave a loop (computed once per model)."""

    close_string: np.ndarray  # bool[n_vocab]: pieces that start with '"'
    close_container: np.ndarray  # bool[n_vocab]: pieces that start with ']' or '}', and end-of-generation tokens

    @classmethod
    def from_pieces(cls, pieces: list[bytes], eog: set[int]) -> ExitTokens:
        n = len(pieces)
        close_string = np.zeros(n, dtype=bool)
        close_container = np.zeros(n, dtype=bool)
        for i, piece in enumerate(pieces):
            head = piece.lstrip(b" ")[:1]
            if head == b'"':
                close_string[i] = True
            elif head in (b"]", b"}"):
                close_container[i] = True
        for i in eog:
            if 0 <= i < n:
                close_container[i] = True
        return cls(close_string, close_container)


@dataclass
class JsonLexState:
    """Whether the JSON text generated so far is inside a string (escapes honoured)."""

    in_string: bool = False
    _escaped: bool = False

    def feed(self, data: bytes) -> None:
        for byte in data:
            if self.in_string:
                if self._escaped:
                    self._escaped = False
                elif byte == 0x5C:  # backslash
                    self._escaped = True
                elif byte == 0x22:  # quote
                    self.in_string = False
            elif byte == 0x22:
                self.in_string = True


@dataclass
class LoopGuard:
    """One answer's loop detector and steerer."""

    exits: ExitTokens
    json: bool = True  # the answer is JSON (string/container awareness); False: only ban the continuation
    max_period: int = 64
    repeats: int = 3  # for short blocks; a block of `long_block` tokens or more needs only two
    long_block: int = 8
    min_span: int = 12
    tokens: list[int] = field(default_factory=list)
    steered: int = 0  # how many times it stepped in (reported in timings/traces)
    _lex: JsonLexState = field(default_factory=JsonLexState)
    _quiet_until: int = 0  # no detection before this many tokens (after a steer)

    def observe(self, token: int, piece: bytes) -> None:
        """Record a token of the answer (sampled or forced) and the bytes it stands for."""
        self.tokens.append(token)
        self._lex.feed(piece)

    def cycle(self) -> int | None:
        """The period of the cycle the answer ends in, or None."""
        toks = self.tokens
        n = len(toks)
        if n < self.min_span or n < self._quiet_until:
            return None
        last = toks[-1]
        for period in range(1, min(self.max_period, n // 2) + 1):
            if toks[-1 - period] != last:
                continue
            span = max((2 if period >= self.long_block else self.repeats) * period, self.min_span)
            if span > n:
                continue
            window = toks[n - span:]
            if all(window[i] == window[i + period] for i in range(span - period)):
                return period
        return None

    def steer(self, logits: np.ndarray) -> bool:
        """If the answer is looping, restrict `logits` (already masked by the grammar) to a way out."""
        period = self.cycle()
        if period is None:
            return False
        allowed = np.isfinite(logits)
        continuation = self.tokens[-period]
        keep: np.ndarray | None = None
        if self.json:
            preferred = self.exits.close_string if self._lex.in_string else self.exits.close_container
            candidates = allowed & preferred[: logits.shape[0]]
            if candidates.any():
                keep = candidates
        if keep is None:
            others = allowed.copy()
            others[continuation] = False
            if not others.any():
                return False  # the grammar allows only the cycle: nothing to steer to
            keep = others
        np.copyto(logits, NEG_INF, where=~keep)
        self.steered += 1
        self._quiet_until = len(self.tokens) + self.min_span
        return True
