"""Grounded answers: the prompt that quotes retrieved passages, the answer's per-request schema, and the
support check.

For each request to a contract that names a knowledge base, the router retrieves the top passages and
hands the ladder one text: the passages, each behind its short id (`[c123]`), then the question. The
answer is constrained to `{"answer": ..., "citations": [ids]}` where the grammar admits only the ids
retrieved for this request (so a model cannot cite anything else), or to the explicit
`{"answer": "not in the knowledge base", "citations": []}`. `support` measures how much of an answer's
wording comes from the passages it cites (the share of its content words found there): a cheap check
that the answer is held to its sources.

A contract may ask for *quoted* answers instead (`grounding.answer: quoted`): the answer is then one sentence
copied verbatim from a passage, and its citation is that passage. The grammar enumerates the passages'
sentences, so a small model selects instead of writing: it cannot state anything the passages do not say,
and its citation cannot disagree with its answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from smallfleet.kb.retrieve import Retrieval

NOT_FOUND = "not in the knowledge base"
INSTRUCTIONS = ("Answer the question from the passages only, briefly, and cite the ids of the passages you used. "
                f'If the passages do not answer it, answer "{NOT_FOUND}" with no citations.')
QUOTE_INSTRUCTIONS = ("Answer the question with the one sentence, copied from the passages, that answers it best, "
                      f'and cite its passage. If the passages do not answer it, answer "{NOT_FOUND}" with no '
                      "citations.")
_PASSAGES = "Passages:\n"
_QUESTION = "\n\nQuestion: "
QUESTION_MARKER = _QUESTION
_ID_LINE = re.compile(r"^\[(c\d+)\] ", re.MULTILINE)
_WORD = re.compile(r"[a-z0-9_.]+")
# A sentence ends at . ! ? or : before a capital (Latin, Greek, Cyrillic), a digit or an opening quote, and
# after the full-width 。！？ of scripts written without spaces.
_SENTENCE_END = re.compile(r"(?<=[.!?:])\s+(?=[A-Z0-9\"'(\[`\u00c0-\u00de\u0391-\u03a9\u0410-\u042f])|(?<=[。！？])\s*")
_MIN_CHARS = 12  # a sentence of fewer than 3 words is still quotable from this length (e.g. Japanese)
QUOTED = "smallfleet quoted answer"  # the title of every `quoted_schema`
_ELLIPSIS = " ..."  # what `passages_of` appends to a passage it cut
_STOP = frozenset("a an and are as at be but by can do does for from has have how i if in into is it its "
                  "no not of on or so such than that the their then there these they this to use used using "
                  "was we what when which will with you your".split())


def instructions_for(grounding: Any) -> str:  # noqa: ANN401 - a contracts.spec.Grounding or None
    """The default system instructions of a grounded contract ('' for any other)."""
    if grounding is None:
        return ""
    return QUOTE_INSTRUCTIONS if grounding.answer == "quoted" else INSTRUCTIONS


@dataclass(frozen=True)
class Passage:
    id: str
    title: str
    text: str  # the chunk's body (without its title line)


def passages_of(found: Retrieval, max_words: int | None = None) -> list[Passage]:
    out = []
    for hit in found.hits:
        body = hit.chunk.text.split("\n", 1)[1] if "\n" in hit.chunk.text else hit.chunk.text
        if max_words is not None:
            words = body.split()
            body = " ".join(words[:max_words]) + (_ELLIPSIS if len(words) > max_words else "")
        out.append(Passage(hit.chunk.cite_id, hit.chunk.title, body))
    return out


def _body(text: str) -> str:
    """A passage body that cannot forge the layout: a line that looks like an id line is indented, and the
    question marker is broken up, so only `compose` itself writes either."""
    return _ID_LINE.sub(lambda m: " " + m.group(0), text).replace(_QUESTION, "\n\n Question: ")


def compose(question: str, passages: list[Passage]) -> str:
    """The one text the ladder sees: the passages behind their ids, then the question. Titles are one line and
    bodies are escaped (`_body`), so the first question marker is this one and every id line before it was
    written here: neither a document nor the question can add a citable id."""
    if not passages:
        return f"{_PASSAGES}(none){_QUESTION}{question}"
    blocks = [f"[{p.id}] {' '.join(p.title.split())}\n{_body(p.text)}" for p in passages]
    return _PASSAGES + "\n\n".join(blocks) + _QUESTION + question


def _head(text: str) -> str:
    return text.split(_QUESTION, 1)[0]  # the first marker: everything after it is the question


def question_of(text: str) -> str:
    """The question of a composed text (everything after the first question marker)."""
    return text.split(_QUESTION, 1)[1] if _QUESTION in text else text


def body_of(block: str) -> str:
    """A quoted passage without its title line (`passage_texts` gives both)."""
    return block.split("\n", 1)[1] if "\n" in block else ""


def passage_ids(text: str) -> list[str]:
    """The ids quoted in a composed text (in order): the citations the answer may use."""
    return _ID_LINE.findall(_head(text))


def passage_texts(text: str) -> dict[str, str]:
    """Id -> passage text of a composed text."""
    head = _head(text)
    parts = _ID_LINE.split(head)  # ["Passages:\n", id, body, id, body ...]
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def answer_schema(ids: list[str], max_citations: int = 3, max_chars: int = 300) -> dict[str, Any]:
    """The answer's JSON schema for one request: citations drawn from `ids` only, or the explicit not-found."""
    not_found = {"type": "object", "properties": {"answer": {"const": NOT_FOUND},
                                                  "citations": {"type": "array", "maxItems": 0}},
                 "required": ["answer", "citations"], "additionalProperties": False}
    if not ids:
        return not_found
    answered = {"type": "object",
                "properties": {"answer": {"type": "string", "minLength": 1, "maxLength": max_chars},
                               "citations": {"type": "array", "items": {"enum": list(ids)}, "minItems": 1,
                                             "maxItems": min(max_citations, len(ids))}},
                "required": ["answer", "citations"], "additionalProperties": False}
    return {"anyOf": [answered, not_found]}


def _runs(passage: str, max_chars: int, min_words: int) -> list[list[str]]:
    """The quotable sentences of a passage body, in runs of sentences that stand next to each other in it: a
    line break, or a sentence that is not quotable (a fragment under `min_words` words and `_MIN_CHARS`
    characters, or one longer than `max_chars`), ends a run. The fragment `passages_of` cut is not quotable:
    its source does not say it."""
    passage = passage.rstrip()
    cut = passage.endswith(_ELLIPSIS)
    if cut:
        passage = passage[: -len(_ELLIPSIS)]
    lines = [[" ".join(p.split()) for p in _SENTENCE_END.split(line.strip()) if p.strip()]
             for line in passage.splitlines()]
    lines = [line for line in lines if line]
    if cut and lines:
        lines[-1].pop()
    runs: list[list[str]] = []
    for line in lines:
        run: list[str] = []
        for sentence in line:
            if len(sentence) <= max_chars and (len(sentence.split()) >= min_words or len(sentence) >= _MIN_CHARS):
                run.append(sentence)
            elif run:
                runs.append(run)
                run = []
        if run:
            runs.append(run)
    return runs


def sentences(passage: str, max_chars: int = 300, min_words: int = 3) -> list[str]:
    """The sentences of a passage body a quoted answer may be (see `_runs`), each once, in order."""
    return list(dict.fromkeys(s for run in _runs(passage, max_chars, min_words) for s in run))


def quotes(passage: str, max_chars: int = 300) -> list[str]:
    """What a quoted answer may be, from one passage body: each quotable sentence, and each two sentences that
    follow each other on one line of it and fit in `max_chars` together."""
    runs = _runs(passage, max_chars, 3)
    pairs = [f"{a} {b}" for run in runs for a, b in zip(run, run[1:]) if len(a) + 1 + len(b) <= max_chars]
    return list(dict.fromkeys([s for run in runs for s in run] + pairs))


def quoted_schema(composed: str, max_chars: int = 300) -> dict[str, Any]:
    """The answer's JSON schema for one request in quoted style: a quote (`quotes`) of one passage, citing
    that passage alone, or the explicit not-found. Titled `QUOTED`, which is how `quoted_options` knows it."""
    options = []
    for pid, block in passage_texts(composed).items():
        quotable = quotes(body_of(block), max_chars)  # not the title line
        if quotable:
            options.append({"type": "object",
                            "properties": {"answer": {"enum": quotable},
                                           "citations": {"type": "array", "items": {"enum": [pid]},
                                                         "minItems": 1, "maxItems": 1}},
                            "required": ["answer", "citations"], "additionalProperties": False})
    return {"title": QUOTED, "anyOf": [*options, answer_schema([])]}


def quoted_options(schema: object) -> list[tuple[str, list[str]]] | None:
    """(passage id, its quotes) for each passage of a `quoted_schema`, in the passages' order ([] when no
    passage had a quotable sentence); None for a schema `quoted_schema` did not build."""
    if not isinstance(schema, dict) or schema.get("title") != QUOTED or not isinstance(schema.get("anyOf"), list):
        return None
    out = []
    for option in schema["anyOf"]:
        props = option.get("properties") if isinstance(option, dict) else None
        answer = props.get("answer") if isinstance(props, dict) else None
        citations = props.get("citations") if isinstance(props, dict) else None
        items = citations.get("items") if isinstance(citations, dict) else None
        enum, cited = (answer.get("enum") if isinstance(answer, dict) else None,
                       items.get("enum") if isinstance(items, dict) else None)
        if isinstance(enum, list) and isinstance(cited, list) and len(cited) == 1 and isinstance(cited[0], str) \
                and enum and all(isinstance(e, str) for e in enum):
            out.append((cited[0], list(enum)))
        elif not (isinstance(answer, dict) and answer.get("const") == NOT_FOUND):
            return None  # an option that is neither a passage's quotes nor the not-found answer
    return out


def content_words(text: str) -> set[str]:
    return {w.strip(".") for w in _WORD.findall(text.lower()) if len(w.strip(".")) > 2 and w not in _STOP}


def support(answer_json: str, composed: str) -> float | None:
    """The share of the answer's content words found in the passages it cites (1.0 for the not-found answer,
    which claims nothing; None when the answer is not the grounded shape)."""
    try:
        value = json.loads(answer_json)
        answer, cited = value["answer"], value["citations"]
    except (ValueError, TypeError, KeyError):
        return None
    if answer == NOT_FOUND and not cited:
        return 1.0
    texts = passage_texts(composed)
    source = set().union(*(content_words(texts.get(c, "")) for c in cited)) if cited else set()
    words = content_words(str(answer))
    if not words:
        return 0.0
    return round(len(words & source) / len(words), 4)
