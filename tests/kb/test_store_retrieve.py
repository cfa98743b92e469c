"""The knowledge-base store (incremental indexing) and hybrid retrieval."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from smallfleet.embeddings import DIMENSIONS
from smallfleet.kb.parse import ParseError
from smallfleet.kb.retrieve import Retriever, query_terms
from smallfleet.kb.store import KnowledgeBase, KnowledgeStore
from tests.kb.test_parse_chunk import FAQ_DIR


class WordHashEmbedder:
    """Bag-of-words vectors (each word hashed to a dimension), L2-normalised: similar words, similar vectors."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        self.calls += len(texts)
        out = np.zeros((len(texts), DIMENSIONS), np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % DIMENSIONS] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] /= norm if norm else 1.0
        return out


@pytest.fixture(params=["sqlite", "postgres"])
def make_kb(request: pytest.FixtureRequest, tmp_path: Path):  # noqa: ANN201
    """Each knowledge-base store in turn (a SQLite file, or the shared PostgreSQL database): the same tests."""
    opened: list[KnowledgeStore] = []

    def make(name: str) -> KnowledgeStore:
        if request.param == "sqlite":
            kb: KnowledgeStore = KnowledgeBase(tmp_path / f"{name}.sqlite", name)
        else:
            from smallfleet.kb.pg_store import PostgresKnowledgeBase

            kb = PostgresKnowledgeBase(request.getfixturevalue("pg_url"), name)
        opened.append(kb)
        return kb

    yield make
    for kb in opened:
        try:
            kb.close()
        except Exception:  # noqa: BLE001 - closed by the test already
            pass


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "shipping.md").write_text("# Shipping\n\n## Delivery times\n\nParcels arrive in three working days.\n\n"
                                   "## Costs\n\nShipping is free for orders over fifty euros.\n")
    (d / "faq.jsonl").write_text('{"question": "How do I return an item?", "answer": "Use the returns form within '
                                 '30 days."}\n{"question": "Do you ship abroad?", "answer": "Yes, to the EU."}\n')
    (d / "ignored.bin").write_bytes(b"\x00\x01")  # not a supported type: skipped inside a directory
    return d


def test_add_indexes_then_skips_unchanged_and_reindexes_changed(make_kb, docs: Path) -> None:  # noqa: ANN001
    kb = make_kb("kb")
    enc = WordHashEmbedder()
    first = kb.add([docs], enc)
    assert (len(first.added), len(first.updated), first.chunks) == (2, 0, 4)
    version, calls = kb.version, enc.calls
    again = kb.add([docs], enc)
    assert (len(again.added), len(again.updated), len(again.unchanged)) == (0, 0, 2)
    assert kb.version == version and enc.calls == calls  # nothing parsed, embedded or written
    (docs / "shipping.md").write_text("# Shipping\n\n## Delivery times\n\nParcels now arrive next day.\n")
    changed = kb.add([docs], enc)
    assert (len(changed.updated), len(changed.unchanged), changed.chunks) == (1, 1, 1)
    assert kb.version != version
    assert kb.stats()["chunks"] == 3
    texts = [c.text for c in kb.chunks(kb.matrix()[0].tolist())]
    assert any("next day" in t for t in texts) and not any("three working days" in t for t in texts)
    assert kb.lexical(["working"], 5) == []  # the old chunk is gone from the full-text index too
    kb.close()
    only = make_kb("only")
    assert len(only.add([docs], WordHashEmbedder(), exclude=["*.jsonl"]).added) == 1


def test_a_document_that_fails_to_parse_leaves_the_others_indexed(make_kb, docs: Path) -> None:  # noqa: ANN001
    (docs / "zz-broken.jsonl").write_text("{not json\n")
    kb = make_kb("kb")
    with pytest.raises(ParseError, match="zz-broken.jsonl: line 1 is not JSON"):
        kb.add([docs], WordHashEmbedder())
    names = sorted(Path(str(d["path"])).name for d in kb.documents())
    assert names == ["faq.jsonl", "shipping.md"]  # accepted before the failure: kept; the broken one: absent
    kb.close()


def test_remove_document_drops_its_chunks(make_kb, docs: Path) -> None:  # noqa: ANN001
    kb = make_kb("kb")
    kb.add([docs], WordHashEmbedder())
    assert kb.remove_document(str(docs / "faq.jsonl"))
    assert not kb.remove_document(str(docs / "faq.jsonl"))
    assert kb.stats()["chunks"] == 2 and len(kb.matrix()[0]) == 2
    assert kb.lexical(["returns"], 5) == []
    kb.close()


def test_query_terms_drop_stop_words_and_keep_dotted_names() -> None:
    assert query_terms("How do I use copy.deepcopy on a list?") == ["use", "copy.deepcopy", "copy", "deepcopy", "list"]


def test_hybrid_fuses_lexical_and_dense_rankings(make_kb, docs: Path) -> None:  # noqa: ANN001
    kb = make_kb("kb")
    kb.add([docs], WordHashEmbedder())
    retriever = Retriever(kb, WordHashEmbedder())
    found = retriever.search("how much does shipping cost", k=2)
    assert found.hits[0].chunk.title == "Shipping > Costs"
    assert found.hits[0].lexical_rank is not None and found.hits[0].dense_rank is not None
    assert found.ids() == [h.chunk.cite_id for h in found.hits]
    assert 0 < found.top_cosine <= 1 and found.margin >= 0
    lexical = retriever.search("returns form", k=3, mode="lexical")
    assert lexical.hits[0].chunk.title == "How do I return an item?"
    assert all(h.dense_rank is None for h in lexical.hits)
    kb.close()


@pytest.mark.model
def test_real_embeddings_find_a_misspelt_paraphrase_that_bm25_misses(tmp_path: Path) -> None:
    from smallfleet.embeddings import Encoder

    encoder = Encoder()
    kb = KnowledgeBase(tmp_path / "faq.sqlite")
    kb.add([FAQ_DIR / "programming.html"], encoder)
    retriever = Retriever(kb, encoder)
    query = "how can i clone an objekt"  # no word of it is in the FAQ's text: BM25 finds nothing
    assert retriever.search(query, k=5, mode="lexical").hits == ()
    assert retriever.search(query, k=5).hits[0].chunk.anchor == "how-do-i-copy-an-object-in-python"
    exact = retriever.search("UnboundLocalError", k=3)
    assert exact.hits[0].chunk.anchor == "why-am-i-getting-an-unboundlocalerror-when-the-variable-has-a-value"
    kb.close()


def test_a_removed_and_rebuilt_knowledge_base_is_reopened_with_a_new_version(tmp_path: Path, docs: Path) -> None:
    from smallfleet.errors import KnowledgeBaseUnavailable
    from smallfleet.kb.library import Library
    from smallfleet.kb.store import kb_path

    path = kb_path(tmp_path, "help")
    kb = KnowledgeBase(path, "help")
    kb.add([docs / "shipping.md"], WordHashEmbedder())
    kb.close()
    library = Library(tmp_path, ["help"], WordHashEmbedder)
    before = library.version("help")
    assert "fifty euros" in library.search("help", "shipping cost", 1).hits[0].chunk.text
    for p in path.parent.glob("help.sqlite*"):
        p.unlink()  # what `kb remove` does
    with pytest.raises(KnowledgeBaseUnavailable, match="is empty"):
        library.search("help", "shipping cost", 1)
    (docs / "shipping.md").write_text("# Shipping\n\n## Costs\n\nShipping now costs five euros.\n")
    kb = KnowledgeBase(path, "help")
    kb.add([docs / "shipping.md"], WordHashEmbedder())
    kb.close()
    assert "five euros" in library.search("help", "shipping cost", 1).hits[0].chunk.text  # the new index
    assert library.version("help") != before  # same count of changes, another generation: no old cache key
    empty = KnowledgeBase(kb_path(tmp_path, "other"), "other")
    empty.close()
    with pytest.raises(KnowledgeBaseUnavailable, match="'other' is empty"):
        Library(tmp_path, ["other"], WordHashEmbedder).search("other", "x", 1)


def test_knowledge_bases_on_postgresql_are_shared_kept_apart_and_rebuilt_with_a_new_version(
        pg_url: str, tmp_path: Path, docs: Path) -> None:
    """Two knowledge bases in one database stay apart; a library in another process's place (a replica) sees
    what `kb add` wrote, no longer answers once `kb remove` dropped it, and answers from the new index (a new
    version: no old cache key) once it is filled again."""
    from smallfleet.errors import KnowledgeBaseUnavailable
    from smallfleet.kb.library import Library
    from smallfleet.kb.store import kb_exists, open_kb, remove_kb

    help_kb, other = open_kb(tmp_path, "help", pg_url), open_kb(tmp_path, "other", pg_url)
    assert not kb_exists(tmp_path, "help", pg_url) and help_kb.version == ""
    help_kb.add([docs / "shipping.md"], WordHashEmbedder())
    other.add([docs / "faq.jsonl"], WordHashEmbedder())
    assert help_kb.stats()["chunks"] == 2 and other.stats()["chunks"] == 2
    assert help_kb.lexical(["returns"], 5) == [] and other.lexical(["returns"], 5)  # each its own index
    help_kb.close()
    other.close()
    library = Library(tmp_path / "elsewhere", ["help", "empty"], WordHashEmbedder, database_url=pg_url)
    before = library.version("help")
    assert "fifty euros" in library.search("help", "shipping cost", 1).hits[0].chunk.text
    assert remove_kb(tmp_path, "help", pg_url) and not remove_kb(tmp_path, "help", pg_url)
    with pytest.raises(KnowledgeBaseUnavailable, match="is empty"):
        library.search("help", "shipping cost", 1)
    (docs / "shipping.md").write_text("# Shipping\n\n## Costs\n\nShipping now costs five euros.\n")
    again = open_kb(tmp_path, "help", pg_url)
    again.add([docs / "shipping.md"], WordHashEmbedder())
    again.close()
    assert "five euros" in library.search("help", "shipping cost", 1).hits[0].chunk.text
    assert library.version("help") != before
    with pytest.raises(KnowledgeBaseUnavailable, match="'empty' is empty"):
        library.search("empty", "x", 1)
    assert open_kb(tmp_path, "other", pg_url).stats()["chunks"] == 2  # untouched by help's removal
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as admin:  # the server drops the library's connection
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                      "AND pid <> pg_backend_pid()")
    assert "five euros" in library.search("help", "shipping cost", 1).hits[0].chunk.text  # reconnected once
    from smallfleet.sim.serve import free_port

    nowhere = Library(tmp_path, ["help"], WordHashEmbedder,
                      database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    with pytest.raises(KnowledgeBaseUnavailable, match="'help' cannot be read"):
        nowhere.search("help", "shipping cost", 1)  # a server that is down: a 503 naming it, not a 500
    kb_file = open_kb(tmp_path / "elsewhere", "empty")  # an index file from before the URL was set is not read: say so
    kb_file.add([docs / "faq.jsonl"], WordHashEmbedder())
    kb_file.close()
    with pytest.raises(KnowledgeBaseUnavailable, match="knowledge bases are read from PostgreSQL, not from"):
        library.search("empty", "x", 1)
    library.close()
