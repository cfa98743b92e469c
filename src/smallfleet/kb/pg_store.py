"""A knowledge base in PostgreSQL (`SMALLFLEET_DATABASE_URL`): every gateway replica and every machine reads the
same index, and `smallfleet kb add` on any of them updates it for all.

Tables `kb_meta`, `kb_documents` and `kb_chunks` (migration `p003_knowledge_bases`, applied with the trace
store's under its advisory lock) hold every knowledge base, keyed by name. Lexical search is PostgreSQL
full-text search: each chunk's `tsvector` (English stemming; title weighted A, text B) is a stored generated
column under a GIN index, queried with the question's terms OR'ed and ranked by `ts_rank` (title counting
twice the text, as the SQLite store's BM25 weights do). `ts_rank` is not BM25 (no inverse document
frequency); `smallfleet kb eval` measures both stores on the same questions (README). Embeddings are float32
`bytea` beside each chunk, loaded into the same in-memory matrix as on SQLite.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np

from smallfleet.embeddings import ENCODER
from smallfleet.kb.chunk import Chunk
from smallfleet.kb.store import KnowledgeStore, StoredChunk, chunk_rows, embedding_rows

# ts_rank's weights, in the order {D, C, B, A}: a title word (A) counts twice a text word (B).
_WEIGHTS = "{0, 0, 0.5, 1.0}"


class PostgresKnowledgeBase(KnowledgeStore):
    """Knowledge base `name` in the database at `url`: one connection, one user at a time (as the SQLite one)."""

    def __init__(self, url: str, name: str, migrate: bool = True, connect_timeout_s: int = 10) -> None:
        """`migrate`: bring the schema up to date first (once per process is enough)."""
        import psycopg

        from smallfleet.trace.postgres import migrate as migrate_schema

        self.name = name
        self.url = url
        self._db: psycopg.Connection[Any] = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout_s)
        try:
            if migrate:
                migrate_schema(self._db)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    @property
    def version(self) -> str:
        rows = dict(self._db.execute("SELECT key, value FROM kb_meta WHERE kb = %s AND key IN ('generation', "
                                     "'version')", (self.name,)).fetchall())
        return f"{rows['generation']}.{rows['version']}" if rows else ""

    def _known(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT path, sha256 FROM kb_documents WHERE kb = %s", (self.name,)).fetchall())

    def _replace(self, key: str, digest: str, fmt: str, size: int, chunks: list[Chunk], vectors: np.ndarray) -> None:
        with self._db.transaction():
            # A knowledge base removed and filled again starts a new generation: no cache key of the old one
            # matches the new one.
            self._db.execute("INSERT INTO kb_meta VALUES (%s, 'generation', %s), (%s, 'version', '0'), "
                             "(%s, 'encoder', %s) ON CONFLICT DO NOTHING",
                             (self.name, uuid.uuid4().hex[:12], self.name, self.name, ENCODER))
            self._db.execute("DELETE FROM kb_documents WHERE kb = %s AND path = %s", (self.name, key))
            self._db.execute("INSERT INTO kb_documents VALUES (%s, %s, %s, %s, %s, %s, %s)",
                             (self.name, key, digest, fmt, size, len(chunks), time.time()))
            with self._db.cursor() as cur:
                cur.executemany("INSERT INTO kb_chunks (kb, document, anchor, part, title, text, embedding) "
                                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                                [(self.name, *row) for row in chunk_rows(key, chunks, vectors)])
            self._bump()

    def _delete(self, key: str) -> bool:
        with self._db.transaction():
            gone = self._db.execute("DELETE FROM kb_documents WHERE kb = %s AND path = %s",
                                    (self.name, key)).rowcount
            if gone:
                self._bump()
        return bool(gone)

    def drop(self) -> bool:
        """Delete the whole knowledge base (documents, chunks, versions); False when it had none."""
        with self._db.transaction():
            self._db.execute("DELETE FROM kb_documents WHERE kb = %s", (self.name,))
            return bool(self._db.execute("DELETE FROM kb_meta WHERE kb = %s", (self.name,)).rowcount)

    def _has(self, path: str) -> bool:
        return self._db.execute("SELECT 1 FROM kb_documents WHERE kb = %s AND path = %s",
                                (self.name, path)).fetchone() is not None

    def _bump(self) -> None:
        self._db.execute("UPDATE kb_meta SET value = (value::bigint + 1)::text WHERE kb = %s AND key = 'version'",
                         (self.name,))

    def documents(self) -> list[dict[str, object]]:
        rows = self._db.execute("SELECT path, format, bytes, chunks, added_at FROM kb_documents WHERE kb = %s "
                                "ORDER BY path", (self.name,)).fetchall()
        return [{"path": p, "format": f, "bytes": b, "chunks": c, "added_at": a} for p, f, b, c, a in rows]

    def stats(self) -> dict[str, object]:
        docs, chunks = self._db.execute("SELECT COUNT(*), COALESCE(SUM(chunks), 0) FROM kb_documents WHERE kb = %s",
                                        (self.name,)).fetchone()
        size = self._db.execute("SELECT COALESCE(SUM(pg_column_size(c.*)), 0) FROM kb_chunks c WHERE kb = %s",
                                (self.name,)).fetchone()[0]
        return {"name": self.name, "documents": docs, "chunks": int(chunks), "version": self.version,
                "encoder": ENCODER, "file": "postgresql (SMALLFLEET_DATABASE_URL)", "file_bytes": int(size)}

    def chunks(self, ids: Iterable[int]) -> list[StoredChunk]:
        wanted = list(ids)
        if not wanted:
            return []
        rows = self._db.execute("SELECT id, document, anchor, part, title, text FROM kb_chunks WHERE kb = %s AND "
                                "id = ANY(%s)", (self.name, wanted)).fetchall()
        by_id = {r[0]: StoredChunk(*r) for r in rows}
        return [by_id[i] for i in wanted if i in by_id]

    def lexical(self, terms: list[str], k: int) -> list[tuple[int, float]]:
        """`ts_rank` over the stored tsvector (title weighted twice the text)."""
        if not terms:
            return []
        query = " || ".join("plainto_tsquery('english', %s)" for _ in terms)
        rows = self._db.execute(
            f"SELECT id, ts_rank(%s, tsv, q) AS r FROM kb_chunks, ({'SELECT ' + query} AS q) AS query "
            "WHERE kb = %s AND tsv @@ q ORDER BY r DESC, id LIMIT %s", (_WEIGHTS, *terms, self.name, k)).fetchall()
        return [(int(i), float(r)) for i, r in rows]

    def _embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        rows = self._db.execute("SELECT id, embedding FROM kb_chunks WHERE kb = %s ORDER BY id",
                                (self.name,)).fetchall()
        return embedding_rows([(int(i), bytes(e)) for i, e in rows])
