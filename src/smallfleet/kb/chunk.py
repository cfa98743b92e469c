"""Sections into chunks that retrieval returns and prompts quote.

A chunk is one section, or a run of its paragraphs, up to `max_words` words; it starts with the
section's heading path (so a FAQ entry's question and a page's headings are searchable along with the
text) and never spans two sections. A paragraph longer than the limit is cut at sentence ends, then at
words. Each chunk keeps the document, the section's anchor and its place, so a citation points back to
exactly where the text came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from smallfleet.kb.parse import Section

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Chunk:
    document: str  # the document's path as added
    anchor: str  # the section's locator (fragment id, "page 3", "entry 12")
    part: int  # 0 for a section's first chunk, 1, 2 ... for the rest
    title: str  # the heading path, outermost first, joined with " > "
    text: str  # the title line, then the paragraphs

    @property
    def location(self) -> str:
        suffix = f" (part {self.part + 1})" if self.part else ""
        return f"{self.document}#{self.anchor}{suffix}"


def _pieces(paragraph: str, max_words: int) -> list[str]:
    """`paragraph` in pieces of at most `max_words` words, cut at sentence ends where it can be."""
    if len(paragraph.split()) <= max_words:
        return [paragraph]
    out: list[str] = []
    current: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        words = sentence.split()
        while len(words) > max_words:  # one sentence longer than the limit
            if current:
                out.append(" ".join(current))
                current = []
            out.append(" ".join(words[:max_words]))
            words = words[max_words:]
        if current and len(current) + len(words) > max_words:
            out.append(" ".join(current))
            current = []
        current += words
    if current:
        out.append(" ".join(current))
    return out


def chunk_sections(document: str, sections: list[Section], max_words: int = 200) -> list[Chunk]:
    """The chunks of one document's sections, in order."""
    chunks: list[Chunk] = []
    for section in sections:
        title = " > ".join(section.path)
        budget = max(20, max_words - len(title.split()))
        pieces = [p for para in section.paragraphs for p in _pieces(para, budget)]
        groups: list[list[str]] = []
        words = 0
        for piece in pieces:
            n = len(piece.split())
            if groups and words + n <= budget:
                groups[-1].append(piece)
                words += n
            else:
                groups.append([piece])
                words = n
        for part, group in enumerate(groups):
            chunks.append(Chunk(document, section.anchor, part, title, "\n".join([title, *group])))
    return chunks
