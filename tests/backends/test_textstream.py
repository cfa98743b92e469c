"""Stop sequences and UTF-8 assembly of token pieces."""

from __future__ import annotations

from smallfleet.backends.base import TokenLogprob
from smallfleet.backends.textstream import TextAssembler


def feed(assembler: TextAssembler, pieces: list[bytes]) -> str:
    out = []
    for p in pieces:
        d = assembler.push(p, TokenLogprob(token=p.decode(errors="replace"), logprob=-0.1))
        if d is not None:
            out.append(d.text)
        if assembler.stopped:
            break
    tail = assembler.finish()
    if tail is not None:
        out.append(tail.text)
    return "".join(out)


def test_text_without_stops_passes_through() -> None:
    a = TextAssembler()
    assert feed(a, [b"Hello", b" world"]) == "Hello world"
    assert not a.stopped


def test_stop_split_across_tokens_is_held_back_and_removed() -> None:
    a = TextAssembler(stop=("END",))
    streamed = feed(a, [b"abc E", b"N", b"D more"])
    assert streamed == "abc " and a.text == "abc " and a.stopped


def test_partial_stop_prefix_is_released_when_it_does_not_complete() -> None:
    a = TextAssembler(stop=("END",))
    assert feed(a, [b"abc E", b"N", b"X"]) == "abc ENX"
    assert not a.stopped


def test_earliest_of_several_stops_wins() -> None:
    a = TextAssembler(stop=("world", "lo"))
    assert feed(a, [b"Hello world"]) == "Hel"


def test_multibyte_character_split_across_tokens_is_emitted_whole() -> None:
    euro = "€".encode()
    a = TextAssembler()
    first = a.push(euro[:1])
    assert first is None or first.text == ""
    second = a.push(euro[1:])
    assert second is not None and second.text == "€"


def test_logprobs_travel_with_the_text_they_produced() -> None:
    a = TextAssembler(stop=("XY",))
    d1 = a.push(b"ab", TokenLogprob("ab", -0.1))
    d2 = a.push(b"X", TokenLogprob("X", -0.2))
    assert d1 is not None and len(d1.logprobs) == 1
    assert d2 is None  # held back: may be the start of the stop
    d3 = a.push(b"Z", TokenLogprob("Z", -0.3))
    assert d3 is not None and d3.text == "XZ" and [lp.token for lp in d3.logprobs] == ["X", "Z"]
