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
    feed(g, [1, 5, 2, 1, 1, 5, 2, 0, 5, 1, 2, 5, 1, 0, 2, 5, 5, 1, 2, 1, 0, 5, 2])
    logits = np.zeros(len(PIECES), dtype=np.float32)
    assert g.cycle() is None
    assert not g.steer(logits)
    assert np.isfinite(logits).all()


def test_string_loop_is_closed() -> None:
    g = guard()
    feed(g, [0] + [1] * 31)  # '"aaaa...' inside a string: the next 'a' would make 32
    assert g.cycle() == 1
    logits = np.arange(len(PIECES), dtype=np.float32)
    assert g.steer(logits)
    assert set(np.flatnonzero(np.isfinite(logits))) == {0, 6}  # only closing quotes remain
    assert g.cycle() is None  # quiet until a fresh cycle


def test_short_repeats_are_left_alone() -> None:
    g = guard()
    feed(g, [0] + [1] * 20)  # 20 repeats of a one-token block: a long word, a number with zeros
    assert g.cycle() is None
    g = guard()
    feed(g, [3] + [5, 2] * 5)  # [1, 1, 1, 1, 1, : legitimate
    assert g.cycle() is None


def test_array_loop_ends_the_array() -> None:
    g = guard()
    feed(g, [0, 1, 0, 2] * 8)  # '"a", "a", ...' : the block  " a " ,  over 32 tokens
    assert g._lex.in_string is False
    assert g.cycle() == 4
    logits = np.zeros(len(PIECES), dtype=np.float32)
    logits[[1, 4, 5]] = -np.inf  # grammar: after ', ' a string may open, or ']' closes
    assert g.steer(logits)
    assert set(np.flatnonzero(np.isfinite(logits))) == {3, 7}


def test_a_repeated_call_is_stopped_before_a_third_one_starts() -> None:
    g = guard()
    call = [4, 0, 1, 0, 5, 1, 0, 1, 0, 4]  # 10 tokens: one tool call
    feed(g, [3] + call + [2] + call)  # call, separator, the same call again: the next ', ' would repeat
    assert g.cycle() == len(call) + 1
    logits = np.zeros(len(PIECES), dtype=np.float32)
    logits[[0, 1, 4, 5, 6]] = -np.inf  # the grammar allows another separator, ']' or the end
    assert g.steer(logits)
    assert set(np.flatnonzero(np.isfinite(logits))) == {3, 7}
    g2 = guard()
    feed(g2, [3] + call + [2] + call[:-1])
    assert g2.cycle() is None


def test_without_exit_bans_only_the_continuation() -> None:
    g = guard()
    feed(g, [5] * 31)
    logits = np.full(len(PIECES), -np.inf, dtype=np.float32)
    logits[[5, 2]] = 0.0  # the grammar allows another digit or a separator, no closer
    assert g.steer(logits)
    assert set(np.flatnonzero(np.isfinite(logits))) == {2}


def test_nothing_but_the_cycle_allowed_leaves_logits_alone() -> None:
    g = guard()
    feed(g, [5] * 31)
    logits = np.full(len(PIECES), -np.inf, dtype=np.float32)
    logits[5] = 1.0
    assert not g.steer(logits)
    assert logits[5] == 1.0


def test_non_json_answers_only_ban_the_continuation() -> None:
    g = guard(json=False)
    feed(g, [0] + [1] * 31)
    logits = np.zeros(len(PIECES), dtype=np.float32)
    assert g.steer(logits)
    assert not np.isfinite(logits[1]) and np.isfinite(logits[[0, 2, 3, 4, 5, 6, 7]]).all()


def test_lex_state_honours_escapes() -> None:
    lex = JsonLexState()
    lex.feed(b'{"a": "x\\"y')
    assert lex.in_string
    lex.feed(b'", "b": 1')
    assert not lex.in_string


def test_a_number_that_repeats_past_float_precision_is_ended() -> None:
    pieces = [b"0", b".", b"9", b"}", b" "]
    g = LoopGuard(ExitTokens.from_pieces(pieces, set()))
    for i in [0, 1] + [2] * 14:
        g.observe(i, pieces[i])
    assert g._lex.in_number and g.cycle() is None  # 0.99999999999999 (14 nines) is a fine number
    g.observe(2, pieces[2])
    assert g.cycle() == 1  # the 16th nine would go past float64 (0.9999999999999999 9... parses as 1.0)
    logits = np.zeros(len(pieces), dtype=np.float32)
    assert g.steer(logits) and set(np.flatnonzero(np.isfinite(logits))) == {3}


def test_lex_state_tracks_numbers() -> None:
    lex = JsonLexState()
    lex.feed(b'{"a": -12.5e3')
    assert lex.in_number and not lex.in_string
    lex.feed(b', "b": "12')
    assert lex.in_string and not lex.in_number
