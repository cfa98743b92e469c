"""Steer a constrained answer out of a loop the grammar would happily allow forever.

A grammar that admits an unbounded string, array or recursive object also admits a small model
repeating itself until `max_tokens` (`"tags": ["a", "a", "a", ...`, an email of digits, a tree
nested without end, the same tool call over and over). None of the constrained-decoding engines
guard against it: the answer is valid at every step, just never finished.

`LoopGuard` watches the tokens of one answer (sampled and forced alike). When the tail of the
answer is one block of tokens repeated so that the next token would complete the loop (a block
shorter than 8 tokens repeated over at least 32 tokens and 6 times, so `[0, 0, 0, 0]` is left
alone; inside a JSON number, digits repeating over 16 tokens, past float64's precision, so
`1000000000000` is left alone; a block of 8 to 64 tokens, such as a whole tool call, twice), it steers the next sampled token out of the cycle where the grammar
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


_NUMBER_START = frozenset(b"-0123456789")
_NUMBER_BODY = frozenset(b"0123456789.eE+-")


@dataclass
class JsonLexState:
    """Whether the JSON text generated so far is inside a string or a number (escapes honoured)."""

    in_string: bool = False
    in_number: bool = False
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
                self.in_string, self.in_number = True, False
            else:
                self.in_number = byte in (_NUMBER_BODY if self.in_number else _NUMBER_START)


def _periodic_below(window: list[int], limit: int) -> bool:
    """Whether `window` is a repetition of a block shorter than `limit` tokens."""
    return any(all(window[i] == window[i + q] for i in range(len(window) - q)) for q in range(1, limit))


@dataclass
class LoopGuard:
    """One answer's loop detector and steerer."""

    exits: ExitTokens
    json: bool = True  # the answer is JSON (string/container awareness); False: only ban the continuation
    max_period: int = 64
    short_span: int = 32  # a block shorter than `long_block` must repeat over this many tokens (and 6 times)
    short_repeats: int = 6
    long_block: int = 8  # a block this long or longer is a loop once it comes twice in a row
    long_span: int = 16
    number_span: int = 16  # digits repeating inside a number: float64 holds ~16 significant digits
    tokens: list[int] = field(default_factory=list)
    steered: int = 0  # how many times it stepped in (reported in the Generation)
    _lex: JsonLexState = field(default_factory=JsonLexState)
    _quiet_until: int = 0  # no detection before this many tokens (after a steer)

    def observe(self, token: int, piece: bytes) -> None:
        """Record a token of the answer (sampled or forced) and the bytes it stands for."""
        self.tokens.append(token)
        self._lex.feed(piece)

    def _span(self, period: int) -> int:
        if period >= self.long_block:
            return max(2 * period, self.long_span)
        if self.json and self._lex.in_number:
            # 0.99999... past ~16 digits is beyond float64 (it would even parse as 1.0 and break an
            # exclusiveMaximum of 1); a number repeating that long is a loop.
            return max(2 * period, self.number_span)
        return max(self.short_repeats * period, self.short_span)

    def cycle(self) -> int | None:
        """The period of the cycle the *next* token would complete, or None.

        Looking one token ahead means the guard steers at the decision point: after the second copy
        of a repeated tool call it stops before a third one starts, instead of inside it.
        """
        toks = self.tokens
        n = len(toks)
        if n < self._quiet_until:
            return None
        for period in range(1, min(self.max_period, n) + 1):
            span = self._span(period) - 1  # tokens already there; the continuation would make `span + 1`
            if span > n or span <= period + 2 or toks[-1] != toks[-1 - period] or toks[-2] != toks[-2 - period] \
                    or toks[-3] != toks[-3 - period]:
                continue  # (the window's last comparisons, done first because they are cheap)
            window = toks[n - span:]
            if not all(window[i] == window[i + period] for i in range(span - period)):
                continue
            if period >= self.long_block and _periodic_below(window, self.long_block):
                continue  # a run of a short block, judged by the short-block rule
            return period
        return None

    def steer(self, logits: np.ndarray) -> bool:
        """If the answer is looping, restrict `logits` (already masked by the grammar) to a way out."""
        period = self.cycle()
        if period is None:
            return False
        allowed = np.isfinite(logits)
        continuation = self.tokens[-period]  # what would extend the cycle
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
        self._quiet_until = len(self.tokens) + self.long_span
        return True
