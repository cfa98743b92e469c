"""Parsing every supported format into sections, and chunking along the document's structure."""

from __future__ import annotations

from pathlib import Path

import pytest

from smallfleet.kb.chunk import chunk_sections
from smallfleet.kb.parse import ParseError, parse

FAQ_DIR = Path(__file__).resolve().parents[2] / "src" / "smallfleet" / "workload" / "data" / "python_faq"


def minimal_pdf(pages: list[str]) -> bytes:
    """A valid PDF with one line of Helvetica text per page (offsets in the xref table computed)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>",
               "<< /Type /Pages /Kids [" + " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
               + f"] /Count {len(pages)} >>"]
    font = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
                       f"/Resources << /Font << /F1 {font} 0 R >> >> >>")
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = b"%PDF-1.4\n"
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_markdown_headings_open_sections_and_code_stays_whole(tmp_path: Path) -> None:
    doc = tmp_path / "guide.md"
    doc.write_text("# Guide\n\nIntro text.\n\n## Install\n\nRun pip.\n\n```\npip install x\npip list\n```\n\n"
                   "## Use\n\n- first item\n- second item\n")
    sections = parse(doc)
    assert [s.path for s in sections] == [("Guide",), ("Guide", "Install"), ("Guide", "Use")]
    assert sections[1].anchor == "install"
    assert sections[1].paragraphs == ["Run pip.", "pip install x\npip list"]
    assert sections[2].paragraphs == ["first item", "second item"]


def test_html_uses_main_content_section_ids_and_skips_navigation(tmp_path: Path) -> None:
    doc = tmp_path / "page.html"
    doc.write_text("<html><head><title>Page</title></head><body><nav><p>menu link</p></nav>"
                   "<div role='main'><section id='top-q'><h2>How do I X?<a class='headerlink'>\u00b6</a></h2>"
                   "<p>Do   it\nlike this.</p><pre>x = 1\ny = 2</pre>"
                   "<ul><li><p>nested para</p></li></ul></section>"
                   "<script>var a = 1;</script></div><footer><p>footer</p></footer></body></html>")
    [section] = parse(doc)
    assert section.title == "How do I X?"
    assert section.anchor == "top-q"
    assert section.paragraphs == ["Do it like this.", "x = 1\ny = 2", "nested para"]


def test_real_python_faq_pages_parse_into_their_questions() -> None:
    sections = parse(FAQ_DIR / "programming.html")
    anchors = {s.anchor for s in sections}
    assert "how-do-i-copy-an-object-in-python" in anchors
    copy = next(s for s in sections if s.anchor == "how-do-i-copy-an-object-in-python")
    assert copy.path[-1] == "How do I copy an object in Python?"
    assert any("copy.deepcopy" in p or "deepcopy" in p for p in copy.paragraphs)
    assert not any("Contents" == s.title for s in sections)  # the table of contents is navigation


def test_plain_text_with_underlined_headings(tmp_path: Path) -> None:
    doc = tmp_path / "notes.txt"
    doc.write_text("Title\n=====\n\nFirst para\nstill first.\n\nSub\n---\n\nSecond para.\n")
    sections = parse(doc)
    assert [s.path for s in sections] == [("Title",), ("Title", "Sub")]
    assert sections[0].paragraphs == ["First para still first."]


def test_pdf_pages_become_sections(tmp_path: Path) -> None:
    doc = tmp_path / "manual.pdf"
    doc.write_bytes(minimal_pdf(["Refunds take five days.", "Shipping is free over 50 euros."]))
    sections = parse(doc)
    assert [s.anchor for s in sections] == ["page 1", "page 2"]
    assert "Refunds take five days." in sections[0].paragraphs[0]


def test_broken_pdf_is_a_clear_error(tmp_path: Path) -> None:
    doc = tmp_path / "bad.pdf"
    doc.write_bytes(b"not a pdf at all")
    with pytest.raises(ParseError, match="bad.pdf: not a readable PDF"):
        parse(doc)


def test_faq_csv_and_jsonl_are_one_section_per_entry(tmp_path: Path) -> None:
    csv_doc = tmp_path / "faq.csv"
    csv_doc.write_text('Question,Answer,extra\n"How long is shipping?","Three days, usually.",x\n\nCan I return?,Yes.,y\n')
    entries = parse(csv_doc)
    assert [(s.title, s.paragraphs, s.anchor, s.faq) for s in entries] == [
        ("How long is shipping?", ["Three days, usually."], "entry 1", True), ("Can I return?", ["Yes."], "entry 3", True)]
    jsonl = tmp_path / "faq.jsonl"
    jsonl.write_text('{"question": "Q1?", "answer": "A1."}\n\n{"question": "Q2?", "answer": "A2."}\n')
    assert [s.title for s in parse(jsonl)] == ["Q1?", "Q2?"]


@pytest.mark.parametrize(("name", "body", "message"), [
    ("faq.csv", "q,a\nx,y\n", "needs a header row with 'question' and 'answer'"),
    ("faq.jsonl", '{"question": "Q?"}\n', "line 1 has no answer"),
    ("faq.jsonl", "not json\n", "line 1 is not JSON"),
    ("notes.docx", "x", "unsupported file type '.docx'"),
])
def test_malformed_documents_name_the_file_and_line(tmp_path: Path, name: str, body: str, message: str) -> None:
    doc = tmp_path / name
    doc.write_text(body)
    with pytest.raises(ParseError, match=message):
        parse(doc)


def test_chunks_follow_sections_and_respect_the_word_limit(tmp_path: Path) -> None:
    doc = tmp_path / "long.md"
    long_para = " ".join(f"Sentence number {i} is here." for i in range(60))  # 300 words
    doc.write_text(f"# A\n\nshort one.\n\n# B\n\n{long_para}\n\nAnother paragraph.\n")
    chunks = chunk_sections(str(doc), parse(doc), max_words=100)
    assert chunks[0].title == "A" and chunks[0].text == "A\nshort one."
    b = [c for c in chunks if c.title == "B"]
    assert len(b) >= 3 and [c.part for c in b] == list(range(len(b)))
    assert all(len(c.text.split()) <= 100 for c in chunks)
    assert all(c.text.startswith("B\n") for c in b)  # every chunk carries its heading
    body = " ".join(c.text.split("\n", 1)[1] for c in b)
    assert body.split() == (long_para + " Another paragraph.").split()  # nothing lost or repeated
    assert b[1].location.endswith("long.md#b (part 2)")
    assert all(p.rstrip().endswith(".") for c in b[:-1] for p in [c.text])  # cut at sentence ends
