"""Typed, consistent placeholders for sensitive values, and putting the values back.

`Redactor.redact(messages)` replaces every value the detector finds with `<CATEGORY_n>`: the same value
gets the same placeholder in every message of the request (system, user, assistant, tool results, the
arguments of earlier tool calls), different values get different numbers. The `Redaction` it returns
holds the table (placeholder -> value) and the counts per category, and restores answers:

- `restore(text)` for plain text;
- `restore_json(text)` for JSON (answers under a schema, tool-call arguments): a value is written back
  JSON-escaped, so a name with a quote or a backslash cannot break the document;
- `StreamRestorer` for streamed answers, where a placeholder may be split across chunks: it holds back
  a trailing `<` and what could still become a placeholder, and releases it once it is complete or
  cannot be one.

Placeholders the model invents (a number that was never issued) are left as they are.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from smallfleet.backends.base import ChatMessage, Generation, ToolCall
from smallfleet.guard.detect import Detector, Finding

PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)_(\d+)>")
_PARTIAL = re.compile(r"<(?:[A-Z][A-Z0-9_]*(?:_\d*)?)?$")  # what could still grow into a placeholder


def _key(category: str, value: str) -> tuple[str, str]:
    # E-mail addresses are case-insensitive in practice; everything else must match exactly.
    return (category, value.lower()) if category == "EMAIL" else (category, value)


@dataclass
class Redaction:
    """One request's placeholders: what each stands for, and how many of each category were replaced."""

    table: dict[str, str] = field(default_factory=dict)  # placeholder -> original value
    counts: dict[str, int] = field(default_factory=dict)  # category -> occurrences replaced
    _by_value: dict[tuple[str, str], str] = field(default_factory=dict)
    _numbers: dict[str, int] = field(default_factory=dict)

    def placeholder(self, finding: Finding) -> str:
        key = _key(finding.category, finding.value)
        name = self._by_value.get(key)
        if name is None:
            self._numbers[finding.category] = self._numbers.get(finding.category, 0) + 1
            name = f"<{finding.category}_{self._numbers[finding.category]}>"
            self._by_value[key], self.table[name] = name, finding.value
        self.counts[finding.category] = self.counts.get(finding.category, 0) + 1
        return name

    def mask_known(self, text: str) -> str:
        """`text` with every value this table already holds replaced by its placeholder, wherever it appears
        (as written or JSON-escaped), whatever a detector would make of the text around it."""
        for name, value in sorted(self.table.items(), key=lambda item: -len(item[1])):
            text = text.replace(value, name)
            escaped = json.dumps(value, ensure_ascii=False)[1:-1]
            if escaped != value:
                text = text.replace(escaped, name)
        return text

    @property
    def replaced(self) -> int:
        return sum(self.counts.values())

    def restore(self, text: str) -> str:
        if not self.table:
            return text
        return PLACEHOLDER.sub(lambda m: self.table.get(m.group(0), m.group(0)), text)

    def restore_json(self, text: str) -> str:
        """Restore inside a JSON document: each value JSON-escaped (placeholders only ever sit inside strings)."""
        if not self.table:
            return text
        return PLACEHOLDER.sub(lambda m: json.dumps(self.table[m.group(0)], ensure_ascii=False)[1:-1]
                               if m.group(0) in self.table else m.group(0), text)

    def restore_generation(self, gen: Generation, json_text: bool = False) -> Generation:
        """The generation as the caller must see it: text and every tool call's arguments restored."""
        if not self.table:
            return gen
        calls = tuple(replace(c, arguments=self.restore_json(c.arguments)) for c in gen.tool_calls)
        text = self.restore_json(gen.text) if json_text else self.restore(gen.text)
        return replace(gen, text=text, tool_calls=calls)


class Redactor:
    """Replaces what `detector` finds, consistently across a request's messages. Used from one thread at a time
    (the guard's worker)."""

    def __init__(self, detector: Detector, memo: int = 64) -> None:
        self.detector = detector
        # The findings of the last few texts: a request's input is detected once when it is sent out and
        # found again here when its trace is scrubbed. Held in memory only, bounded, never written anywhere.
        self._memo: OrderedDict[str, list[Finding]] = OrderedDict()
        self._memo_size = memo

    def _find(self, text: str) -> list[Finding]:
        found = self._memo.get(text)
        if found is None:
            found = self._memo[text] = self.detector.find(text)
            if len(self._memo) > self._memo_size:
                self._memo.popitem(last=False)
        else:
            self._memo.move_to_end(text)
        return found

    def redact_text(self, text: str, redaction: Redaction) -> str:
        """`text` with every finding replaced; placeholders already in it (an earlier pass) are left alone."""
        taken = [(m.start(), m.end()) for m in PLACEHOLDER.finditer(text)]
        out, last = [], 0
        for f in self._find(text):
            if any(f.start < end and start < f.end for start, end in taken):
                continue
            out.append(text[last:f.start])
            out.append(redaction.placeholder(f))
            last = f.end
        out.append(text[last:])
        return "".join(out)

    def redact(self, messages: Sequence[ChatMessage], redaction: Redaction | None = None
               ) -> tuple[tuple[ChatMessage, ...], Redaction]:
        redaction = redaction if redaction is not None else Redaction()
        out = []
        for m in messages:
            calls = tuple(ToolCall(c.id, c.name, self.redact_text(c.arguments, redaction)) for c in m.tool_calls)
            out.append(replace(m, content=self.redact_text(m.content, redaction), tool_calls=calls))
        return tuple(out), redaction


class StreamRestorer:
    """Restores a streamed answer chunk by chunk; a placeholder split across chunks comes out whole."""

    def __init__(self, redaction: Redaction, json_text: bool = False) -> None:
        self._restore = redaction.restore_json if json_text else redaction.restore
        self._held = ""

    def feed(self, chunk: str) -> str:
        text = self._held + chunk
        tail = _PARTIAL.search(text)
        cut = tail.start() if tail else len(text)
        self._held = text[cut:]
        return self._restore(text[:cut])

    def flush(self) -> str:
        text, self._held = self._held, ""
        return self._restore(text)
