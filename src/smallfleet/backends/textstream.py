"""Turn a stream of token pieces into text deltas, honouring stop sequences.

Used by every backend that produces tokens itself (embedded, fake). Text that might be the
start of a stop sequence is held back until it is clear it is not, so a stop string never
leaks into a streamed answer. Bytes are decoded incrementally so a multi-byte UTF-8 character
split across tokens is emitted whole.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from smallfleet.backends.base import Delta, TokenLogprob


@dataclass
class TextAssembler:
    """Accumulates token pieces; `push` returns the delta that is safe to emit now."""

    stop: tuple[str, ...] = ()
    text: str = ""
    stopped: bool = False
    _sent: int = 0
    _pending_logprobs: list[TokenLogprob] = field(default_factory=list)
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )

    def push(self, piece: bytes, logprob: TokenLogprob | None = None) -> Delta | None:
        """Add one token's bytes; return a delta to emit (or None), setting `stopped` on a stop."""
        if logprob is not None:
            self._pending_logprobs.append(logprob)
        self.text += self._decoder.decode(piece)
        cut = self._first_stop()
        if cut is not None:
            self.text = self.text[:cut]
            self.stopped = True
            return self._emit(cut, final=True)
        return self._emit(len(self.text) - self._held_back())

    def finish(self) -> Delta | None:
        """Flush whatever was held back (the stream ended without completing a stop string)."""
        if not self.stopped:
            self.text += self._decoder.decode(b"", final=True)
        return self._emit(len(self.text), final=True)

    def _emit(self, upto: int, final: bool = False) -> Delta | None:
        chunk = self.text[self._sent : upto] if upto > self._sent else ""
        if not chunk and not (final and self._pending_logprobs):
            return None  # keep log-probs with the text they belong to
        delta = Delta(text=chunk, logprobs=tuple(self._pending_logprobs))
        self._sent = max(upto, self._sent)
        self._pending_logprobs = []
        return delta

    def _first_stop(self) -> int | None:
        # A stop can only begin in text not yet emitted (emitted text was checked already).
        best: int | None = None
        for s in self.stop:
            start = max(0, self._sent - len(s) + 1)
            i = self.text.find(s, start)
            if i != -1 and (best is None or i < best):
                best = i
        return best

    def _held_back(self) -> int:
        """Length of the longest unsent suffix that is a proper prefix of some stop string."""
        longest = 0
        for s in self.stop:
            for n in range(min(len(s) - 1, len(self.text) - self._sent), 0, -1):
                if self.text.endswith(s[:n]):
                    longest = max(longest, n)
                    break
        return longest
