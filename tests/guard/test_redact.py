"""Placeholders: consistent across a request, restored in text, JSON, tool calls and split stream chunks."""

from __future__ import annotations

import json

import pytest

from smallfleet.backends.base import ChatMessage, Generation, Timings, ToolCall
from smallfleet.guard.detect import Detector
from smallfleet.guard.redact import Redaction, Redactor, StreamRestorer


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(Detector(categories=["EMAIL", "CREDIT_CARD", "IBAN", "SECRET"]))


def test_the_same_value_gets_the_same_placeholder_in_every_message(redactor: Redactor) -> None:
    messages = (ChatMessage("system", "Escalate to ops@acme.io if needed."),
                ChatMessage("user", "I am ann@x.org, card 4111 1111 1111 1111. Write to ANN@x.org."),
                ChatMessage("assistant", "", (ToolCall("c1", "send", json.dumps({"to": "ann@x.org"})),)),
                ChatMessage("tool", "sent to ann@x.org", tool_call_id="c1"))
    out, redaction = redactor.redact(messages)
    joined = " ".join([m.content for m in out] + [c.arguments for m in out for c in m.tool_calls])
    assert "ann@x.org" not in joined.lower() and "4111" not in joined and "ops@acme.io" not in joined
    assert out[0].content == "Escalate to <EMAIL_1> if needed."
    assert out[1].content == "I am <EMAIL_2>, card <CREDIT_CARD_1>. Write to <EMAIL_2>."
    assert json.loads(out[2].tool_calls[0].arguments) == {"to": "<EMAIL_2>"} and out[3].content == "sent to <EMAIL_2>"
    assert redaction.counts == {"EMAIL": 5, "CREDIT_CARD": 1} and redaction.table["<EMAIL_2>"] == "ann@x.org"


def test_answers_are_restored_in_text_json_and_tool_calls() -> None:
    redaction = Redaction(table={"<PERSON_1>": 'Jo "JJ" O\\Neil', "<EMAIL_1>": "jo@x.io"})
    assert redaction.restore("Dear <PERSON_1>, re <EMAIL_1> and <EMAIL_9>") == 'Dear Jo "JJ" O\\Neil, re jo@x.io and <EMAIL_9>'
    doc = redaction.restore_json('{"name": "<PERSON_1>", "mail": "<EMAIL_1>"}')
    assert json.loads(doc) == {"name": 'Jo "JJ" O\\Neil', "mail": "jo@x.io"}
    gen = Generation("m", '{"name": "<PERSON_1>"}', "stop", 1, 1, (), Timings(0, 0),
                     tool_calls=(ToolCall("c", "mail", '{"to": "<EMAIL_1>", "who": "<PERSON_1>"}'),))
    restored = redaction.restore_generation(gen, json_text=True)
    assert json.loads(restored.text) == {"name": 'Jo "JJ" O\\Neil'}
    assert json.loads(restored.tool_calls[0].arguments) == {"to": "jo@x.io", "who": 'Jo "JJ" O\\Neil'}


def test_a_placeholder_split_across_stream_chunks_comes_out_whole() -> None:
    redaction = Redaction(table={"<EU_NATIONAL_ID_1>": "65929970489", "<EMAIL_12>": "a@b.io"})
    answer = "id <EU_NATIONAL_ID_1> mail <EMAIL_12>; 3 < 4 and <NOT A TAG> <EMAIL_1"
    expected = "id 65929970489 mail a@b.io; 3 < 4 and <NOT A TAG> <EMAIL_1"
    for size in range(1, 9):
        restorer = StreamRestorer(redaction)
        pieces = [restorer.feed(answer[i:i + size]) for i in range(0, len(answer), size)]
        assert "".join(pieces) + restorer.flush() == expected, size
        assert not any("<EU_" in p or "<EMAIL_12" in p for p in pieces)  # never a half placeholder out
