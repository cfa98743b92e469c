"""llguidance's view of a llama.cpp vocabulary, safe for vocabularies whose special tokens spell text.

llguidance marks control tokens (and user-defined tokens that look like `<...>`) as special: their
bytes get a 0xFF prefix, so grammar *text* never matches them and grammars reach them only by name
(`<tool_call>` in Lark). But when llguidance tokenizes the text a grammar forces, it asks llama.cpp's
tokenizer, which always turns user-defined tokens back into their special ids: Qwen2.5 spells the
text `<tool_call>` as the single token 151657. The forced token then fails the grammar it came from
(`token "\\xff[151657]" doesn't satisfy the grammar; forced bytes: got '<'`), and every
`tool_choice: required` request to a Qwen model failed with a 502.

`llguidance_tokenizer` builds the token table as llguidance's own llama.cpp glue does, but tokenizes
through `PlainTextTokenizer`, which spells any special token in the result as ordinary tokens.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any


def is_special(attr: int, piece: bytes, lib: Any) -> bool:
    """llguidance's rule: control tokens, and user-defined tokens that look like `<...>`."""
    return bool(attr & lib.LLAMA_TOKEN_ATTR_CONTROL) or bool(
        attr & lib.LLAMA_TOKEN_ATTR_USER_DEFINED and piece.startswith(b"<") and piece.endswith(b">"))


@dataclass
class PlainTextTokenizer:
    """Tokenizes text for llguidance with llama.cpp, never producing a special token."""

    tokenize: Any  # callable(bytes) -> list[int]: llama.cpp's tokenizer (no BOS)
    tokens: list[bytes]  # per id, the piece as llguidance sees it (0xFF-prefixed when special)
    eos_token_id: int
    bos_token_id: int | None = None
    special_token_ids: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._special = set(self.special_token_ids)

    def __call__(self, data: bytes) -> list[int]:
        ids = self.tokenize(data)
        if not self._special.intersection(ids):
            return ids
        out: list[int] = []
        for token in ids:
            if token in self._special:
                text = self.tokens[token][1:]  # without the 0xFF marker
                out += self(text[:1]) + self(text[1:])  # '<' then 'tool_call>': no special token matches
            else:
                out.append(token)
        return out


def token_table(vocab: Any, lib: Any) -> tuple[list[bytes], list[int]]:
    """Every token's bytes as llguidance expects them, and the ids of the special ones."""
    n_tokens = lib.llama_vocab_n_tokens(vocab)
    size = 16 * 1024
    buffer = ctypes.create_string_buffer(size + 1)
    tokens: list[bytes] = []
    special: list[int] = []
    for token in range(n_tokens):
        n = lib.llama_token_to_piece(vocab, token, buffer, size, 0, True)
        if n < 0:
            raise ValueError(f"token {token} does not fit a {size}-byte buffer")
        piece = bytes(buffer[:n])
        if is_special(lib.llama_vocab_get_attr(vocab, token), piece, lib):
            special.append(token)
            piece = b"\xff" + piece
        tokens.append(piece)
    return tokens, special


def llguidance_tokenizer(llm: Any, eog_tokens: list[int]) -> Any:
    """An `LLTokenizer` for a loaded `llama_cpp.Llama` (about 1 s for a 150k vocabulary: build once)."""
    import llama_cpp
    from llguidance import LLTokenizer, TokenizerWrapper

    vocab = llm._model.vocab
    tokens, special = token_table(vocab, llama_cpp)
    eos = llama_cpp.llama_vocab_eos(vocab)
    plain = PlainTextTokenizer(
        tokenize=lambda data: llm.tokenize(data, add_bos=False, special=False),
        tokens=tokens, eos_token_id=eos, special_token_ids=special)
    eos_tokens = [eos] + [t for t in eog_tokens if t != eos]
    return LLTokenizer(TokenizerWrapper(plain), n_vocab=llm.n_vocab(), eos_token=eos_tokens)
