"""The Python FAQ shipped with smallfleet (see `data/python_faq/README.md`: PSF licence, kept beside it).

`FAQ_PAGES`: the eight FAQ pages (the index page, the licence and the copyright notice left out);
`QUESTIONS`: the knowledge-base evaluation set; `CACHE_PAIRS`: paraphrase and near-miss pairs.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "python_faq"
FAQ_PAGES = [DATA / f"{name}.html" for name in
             ("general", "programming", "design", "library", "extending", "windows", "gui", "installed")]
QUESTIONS = DATA / "questions.jsonl"
CACHE_PAIRS = DATA / "cache_pairs.jsonl"
