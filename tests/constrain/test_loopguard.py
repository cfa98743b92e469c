"""The loop guard: finds a repeating tail and steers the next token out of it where the grammar allows."""

from __future__ import annotations

import numpy as np

from smallfleet.constrain.loopguard import ExitTokens, JsonLexState, LoopGuard

# A toy vocabulary: ids 0..7.
PIECES = [b'"', b'a', b', ', b']', b'}', b'1', b'"]', b'<eos>']
EOS = 7


def guard(**kw) -> LoopGuard:
    return LoopGuard(ExitTokens.from_pieces(PIECES, {EOS}), **kw)


def feed(g: LoopGuard, ids: list[int]) -> None:
    for i in ids:
        g.observe(i, PIECES[i] if i != EOS else b"")


def test_exit_classes() -> None:
    exits = ExitTokens.from_pieces(PIECES, {EOS})
    assert list(np.flatnonzero(exits.close_string)) == [0, 6]
    assert list(np.flatnonzero(exits.close_container)) == [3, 4, 7]


def test_no_cycle_no_change() -> None:
    g = guard()
    feed(g, [1, 5, 2, 1, 1, 5, 2, 0, 5, 1, 2, 5, 1])
    logits = np.zeros(len(PIECES), dtype=np.float32)
    assert g.cycle() is None
    assert not g.steer(logits)
    assert np.isfinite(logits).all()


def test_string_loop_is_closed() -> None:
    g = guard()
    feed(g, [0] + [1] * 14)  # '"aaaaaaaaaaaaaa' inside a string
    assert g.cycle() == 1
    logits = np.arange(len(PIECES), dtype=np.float32)
    assert g.steer(logits)
    assert set(np.flatnonzero(np.isfinite(logits))) == {0, 6}  # only closing quotes remain
    # Right after steering it keeps quiet until a fresh cycle.
    assert g.cycle() is None


def test_array_loop_ends_the_array() -> None:
    g = guard()
    # '["a", "a", "a", ... ' : the cycle is  " a " ,
    feed(g, [0, 1, 0, 2] * 4)
    assert g._lex.in_string is False
    assert g.cycle() == 4
    logits = np.zeros(len(PIECES), dtype=np.float32)
    logits[[1, 4, 5]] = -np.inf  # grammar: after ', ' a string may open, or (we pretend) ']' closes
    assert g.steer(logits)
    assert set(np.flatnonzero(np.isfinite(logits))) == {3, 7}


def test_without_exit_bans_only_the_continuation() -> None:
    g = guard()
    feed(g, [5] * 16)  # a number of ones
    logits = np.full(len(PIECES), -np.inf, dtype=np.float32)
    logits[[5, 2]] = 0.0  # the grammar allows another digit or a separator, no closer
    assert g.steer(logits)
    assert set(np.flatnonzero(np.isfinite(logits))) == {2}


def test_nothing_but_the_cycle_allowed_leaves_logits_alone() -> None:
    g = guard()
    feed(g, [5] * 16)
    logits = np.full(len(PIECES), -np.inf, dtype=np.float32)
    logits[5] = 1.0
    assert not g.steer(logits)
    assert logits[5] == 1.0


def test_non_json_answers_only_ban_the_continuation() -> None:
    g = guard(json=False)
    feed(g, [0] + [1] * 14)
    logits = np.zeros(len(PIECES), dtype=np.float32)
    assert g.steer(logits)
    assert not np.isfinite(logits[1]) and np.isfinite(logits[[0, 2, 3, 4, 5, 6, 7]]).all()


def test_short_repeats_are_not_loops() -> None:
    g = guard()
    feed(g, [5, 5, 5, 5])  # "1111" is a number, not a loop
    assert g.cycle() is None


def test_lex_state_honours_escapes() -> None:
    lex = JsonLexState()
    lex.feed(b'{"a": "x\\"y')
    assert lex.in_string
    lex.feed(b'", "b": 1')
    assert not lex.in_string


def test_a_long_block_repeated_twice_is_a_loop() -> None:
    g = guard()
    block = [0, 1, 5, 1, 5, 1, 0, 2, 5, 1]  # 10 tokens, e.g. one tool call and its separator
    feed(g, [4] + block * 2)
    assert g.cycle() == len(block)
    g2 = guard()
    feed(g2, [4] + block + block[:-1])
    assert g2.cycle() is None
