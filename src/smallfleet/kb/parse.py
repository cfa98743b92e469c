"""Documents into sections: Markdown, HTML, plain text, PDF and FAQ files (CSV or JSONL question/answer pairs).

A `Section` is one heading's worth of a document (its heading path, an anchor that locates it, and its
paragraphs in order), or one FAQ entry (the question as the heading, the answer as the paragraphs).
Chunking (`kb.chunk`) works on sections, so chunks follow the document's own structure.

Libraries: markdown-it-py for Markdown (CommonMark tokens), selectolax (lexbor) for HTML, pypdf for
PDF. HTML: the 530 pages (48 MB) of the Python 3.11 documentation parse and chunk in 2.6 s on this
2-core machine (about 200 pages/s; embedding them takes 720 s, so the parser is not what to optimise;
no other HTML parser was measured); navigation, scripts, styles and Sphinx's permalink marks are skipped.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from smallfleet.errors import ConfigError

FORMATS = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html", ".txt": "text",
           ".rst": "text", ".pdf": "pdf", ".csv": "faq-csv", ".jsonl": "faq-jsonl"}
_BLOCKS = {"p", "pre", "li", "dt", "dd", "td", "th", "blockquote", "figcaption", "caption"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_SKIP = {"script", "style", "nav", "header", "footer", "noscript", "template", "svg", "form", "button"}


class ParseError(ConfigError):
    """A document that cannot be read (the message names the file and, where known, the line)."""


@dataclass
class Section:
    """One heading's worth of a document: where it sits (`path`, `anchor`, `location`) and its paragraphs."""

    path: tuple[str, ...]  # enclosing headings, outermost first (the last one is this section's title)
    anchor: str  # a stable locator within the document: a fragment id, a slug, "page 3" or "entry 12"
    paragraphs: list[str] = field(default_factory=list)
    faq: bool = False  # a question/answer entry: chunked whole where it fits

    @property
    def title(self) -> str:
        return self.path[-1] if self.path else ""


def format_of(path: Path) -> str:
    """The parser for `path` by its extension (a clear error for anything else)."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ParseError(f"{path}: unsupported file type {path.suffix or '(none)'!r} "
                         f"(supported: {', '.join(sorted(FORMATS))})")
    return kind


def parse(path: Path, data: bytes | None = None) -> list[Section]:
    """The sections of the document at `path` (`data`: its bytes, if already read)."""
    kind = format_of(path)
    raw = path.read_bytes() if data is None else data
    if kind == "pdf":
        return parse_pdf(raw, path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if kind == "markdown":
        return parse_markdown(text, path.stem)
    if kind == "html":
        return parse_html(text, path.stem)
    if kind == "text":
        return parse_text(text, path.stem)
    if kind == "faq-csv":
        return parse_faq_csv(text, path)
    return parse_faq_jsonl(text, path)


def slug(text: str) -> str:
    """A heading as a fragment id, the way Markdown renderers and Sphinx make them."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _clean(text: str) -> str:
    """A paragraph on one line: runs of white space (line breaks included) as one space."""
    return " ".join(text.replace("\u00b6", "").split())


class _Outline:
    """Builds sections as headings and paragraphs arrive in document order."""

    def __init__(self, title: str) -> None:
        self.sections: list[Section] = [Section((title,), "top")]
        self._stack: list[tuple[int, str]] = []  # (level, heading)
        self._doc_title = title

    def heading(self, level: int, text: str, anchor: str | None) -> None:
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        self.sections.append(Section(tuple(h for _, h in self._stack) or (self._doc_title,),
                                     anchor or slug(text)))

    def paragraph(self, text: str) -> None:
        text = _clean(text)
        if text:
            self.sections[-1].paragraphs.append(text)

    def done(self) -> list[Section]:
        return [s for s in self.sections if s.paragraphs]


def parse_markdown(text: str, title: str) -> list[Section]:
    """Markdown by CommonMark tokens: headings open sections; paragraphs, list items, code and tables are
    paragraphs (a fenced code block stays one paragraph, its lines kept)."""
    from markdown_it import MarkdownIt

    outline = _Outline(title)
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    pending_heading: int | None = None
    for tok in tokens:
        if tok.type == "heading_open":
            pending_heading = int(tok.tag[1])
        elif tok.type == "inline" and pending_heading is not None:
            outline.heading(pending_heading, tok.content.strip(), None)
            pending_heading = None
        elif tok.type == "inline":
            outline.paragraph(tok.content)
        elif tok.type in ("fence", "code_block"):
            code = tok.content.rstrip("\n")
            if code.strip():
                outline.sections[-1].paragraphs.append(code)
    return outline.done()


def parse_html(text: str, title: str) -> list[Section]:
    """HTML: the main content (`main`, `[role=main]`, `article`, else `body`), headings opening sections
    (anchored by the enclosing element's id or the heading's own), block elements as paragraphs."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(text)
    page_title = tree.css_first("title")
    outline = _Outline(_clean(page_title.text()) if page_title is not None else title)
    root = (tree.css_first("[role=main]") or tree.css_first("main") or tree.css_first("article")
            or tree.body or tree.root)
    if root is None:
        return []
    for node in root.css("a.headerlink"):
        node.decompose()

    def walk(node) -> None:  # noqa: ANN001 - a selectolax node
        for child in node.iter(include_text=False):
            tag = child.tag
            if tag in _SKIP:
                continue
            if tag in _HEADINGS:
                parent = child.parent
                anchor = child.attributes.get("id") or (parent.attributes.get("id") if parent is not None
                                                        and parent.tag in ("section", "div") else None)
                outline.heading(_HEADINGS[tag], _clean(child.text(deep=True, separator="")), anchor)
            elif tag == "pre":
                code = child.text(deep=True, separator="").strip("\n")
                if code.strip():
                    outline.sections[-1].paragraphs.append(code)
            elif tag in _BLOCKS and not _has_blocks(child):
                outline.paragraph(child.text(deep=True, separator=""))
            else:
                walk(child)

    walk(root)
    return outline.done()


def _has_blocks(node) -> bool:  # noqa: ANN001 - a selectolax node
    """The node holds block elements of its own (then walk into it instead of taking its text whole)."""
    return any(child.tag in _BLOCKS or child.tag in _HEADINGS or child.tag in ("ul", "ol", "dl", "div", "table")
               for child in node.iter(include_text=False))


_RST_RULE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")


def parse_text(text: str, title: str) -> list[Section]:
    """Plain text: paragraphs between blank lines; a line underlined (or over- and underlined) with a
    repeated punctuation mark, the reStructuredText way, is a heading (levels in order of first use)."""
    outline = _Outline(title)
    levels: list[str] = []
    lines = text.splitlines()
    para: list[str] = []

    def flush() -> None:
        if para:
            outline.paragraph("\n".join(para))
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and not _RST_RULE.match(line) and _RST_RULE.match(nxt) and len(nxt.strip()) >= len(line.strip()) - 1:
            flush()
            mark = nxt.strip()[0]
            if mark not in levels:
                levels.append(mark)
            outline.heading(levels.index(mark) + 1, line.strip(), None)
            i += 2
            continue
        if _RST_RULE.match(line):  # an overline (or a stray rule)
            i += 1
            continue
        if line.strip():
            para.append(line)
        else:
            flush()
        i += 1
    flush()
    return outline.done()


def parse_pdf(data: bytes, path: Path) -> list[Section]:
    """PDF: one section per page (anchor `page N`), paragraphs between blank lines of the extracted text."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"{path}: not a readable PDF ({exc})") from None
    sections = []
    for n, page in enumerate(pages, 1):
        paragraphs = [p for p in (_clean(block) for block in re.split(r"\n\s*\n", page)) if p]
        if paragraphs:
            sections.append(Section((path.stem, f"page {n}"), f"page {n}", paragraphs))
    return sections


def _faq_entry(question: object, answer: object, where: str, n: int) -> Section:
    if not isinstance(question, str) or not question.strip():
        raise ParseError(f"{where} has no question")
    if not isinstance(answer, str) or not answer.strip():
        raise ParseError(f"{where} has no answer")
    return Section((question.strip(),), f"entry {n}", [_clean(answer)], faq=True)


def parse_faq_csv(text: str, path: Path) -> list[Section]:
    """A CSV with a header row naming `question` and `answer` columns (any case; other columns ignored)."""
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    names = [h.strip().lower() for h in header or []]
    if "question" not in names or "answer" not in names:
        raise ParseError(f"{path}: a FAQ CSV needs a header row with 'question' and 'answer' columns")
    q, a = names.index("question"), names.index("answer")
    out = []
    for n, row in enumerate(rows, 1):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(q, a):
            raise ParseError(f"{path}: line {n + 1} has {len(row)} columns, expected at least {max(q, a) + 1}")
        out.append(_faq_entry(row[q], row[a], f"{path}: line {n + 1}", n))
    return out


def parse_faq_jsonl(text: str, path: Path) -> list[Section]:
    """One JSON object per line with `question` and `answer` strings (blank lines skipped)."""
    return [_faq_entry(item.get("question"), item.get("answer"), f"{path}: line {lineno}", n)
            for n, (lineno, item) in enumerate(json_lines(text, path), 1)]


def json_lines(text: str, path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON Lines text; a `ParseError` naming the line for one
    that is not a JSON object."""
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except ValueError as exc:
            raise ParseError(f"{path}: line {lineno} is not JSON ({exc.msg})") from None
        if not isinstance(item, dict):
            raise ParseError(f"{path}: line {lineno} is not a JSON object")
        yield lineno, item
