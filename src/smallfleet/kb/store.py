"""A knowledge base: the documents, their chunks, a full-text index and the chunks' embeddings. By default one
SQLite file under `SMALLFLEET_HOME/kb/NAME.sqlite` (no server, `KnowledgeBase`); with `SMALLFLEET_DATABASE_URL`
the PostgreSQL database every replica shares (`kb.pg_store`). `open_kb` picks; both share `add` and the
embedding matrix (`KnowledgeStore`).

- Lexical search is SQLite's FTS5 with its built-in BM25 ranking (Porter stemming, Unicode folding):
  incremental (a changed document's rows are replaced in place, nothing is rebuilt) and persistent. On
  PostgreSQL it is a stored `tsvector` under a GIN index, ranked by `ts_rank` (English stemming).
- Dense search is a plain float32 matrix of L2-normalised all-MiniLM-L6-v2 embeddings, kept as blobs
  beside the chunks and multiplied in memory (measured: see `kb.retrieve`).
- `add` re-indexes only what changed: a document whose bytes hash the same is skipped; a changed one
  has its chunks replaced; one that fails to parse leaves the knowledge base as it was.
"""

from __future__ import annotations

import fnmatch
import hashlib
import sqlite3
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smallfleet.embeddings import DIMENSIONS, ENCODER
from smallfleet.errors import ConfigError
from smallfleet.kb.chunk import Chunk, chunk_sections
from smallfleet.kb.parse import FORMATS, format_of, parse

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, format TEXT NOT NULL, bytes INTEGER NOT NULL,
    chunks INTEGER NOT NULL, added_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, document TEXT NOT NULL REFERENCES documents(path) ON DELETE CASCADE,
    anchor TEXT NOT NULL, part INTEGER NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL,
    embedding BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    title, text, content='chunks', content_rowid='id', tokenize='porter unicode61');
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, title, text) VALUES (new.id, new.title, new.text); END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, title, text) VALUES ('delete', old.id, old.title, old.text); END;
"""


class Embedder:
    """What the knowledge base needs of an encoder (`embeddings.Encoder`, or a test double)."""

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray: ...


@dataclass(frozen=True)
class StoredChunk:
    id: int
    document: str
    anchor: str
    part: int
    title: str
    text: str

    @property
    def cite_id(self) -> str:
        """The short id prompts and citations use for this chunk."""
        return f"c{self.id}"

    @property
    def location(self) -> str:
        return Chunk(self.document, self.anchor, self.part, self.title, self.text).location


@dataclass
class AddReport:
    """What one `add` did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    chunks: int = 0
    bytes: int = 0
    parse_s: float = 0.0
    embed_s: float = 0.0
    seconds: float = 0.0

    @property
    def indexed(self) -> int:
        return len(self.added) + len(self.updated)

    def as_dict(self) -> dict[str, object]:
        pages = self.indexed
        return {"added": len(self.added), "updated": len(self.updated), "unchanged": len(self.unchanged),
                "chunks": self.chunks, "bytes": self.bytes, "seconds": round(self.seconds, 2),
                "parse_s": round(self.parse_s, 2), "embed_s": round(self.embed_s, 2),
                "pages_per_s": round(pages / self.seconds, 1) if self.seconds and pages else None}


def expand(paths: Iterable[Path], exclude: Iterable[str] = ()) -> list[Path]:
    """Files to add: each file given, and every supported file under each directory given (sorted), except those
    whose path under that directory matches one of the `exclude` glob patterns (`_sources/*`)."""
    out: list[Path] = []
    patterns = list(exclude)
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS
                          and not any(fnmatch.fnmatch(str(p.relative_to(path)), g) for g in patterns))
        elif path.is_file():
            format_of(path)  # an unsupported file named on its own is an error, not skipped
            out.append(path)
        else:
            raise ConfigError(f"{path}: no such file or directory")
    return out


class KnowledgeStore(ABC):
    """What every knowledge-base store does, written once: incremental `add`, `remove_document`, the embedding
    matrix loaded once per version. A store gives the primitives (one transaction each)."""

    name: str

    @property
    @abstractmethod
    def version(self) -> str:
        """Changed by every change (and unique to this knowledge base's generation): caches of its answers key on
        it. Empty when the knowledge base has never been filled (or was removed)."""

    @abstractmethod
    def _known(self) -> dict[str, str]:
        """path -> sha256 of every document indexed."""

    @abstractmethod
    def _replace(self, key: str, digest: str, fmt: str, size: int, chunks: list[Chunk], vectors: np.ndarray) -> None:
        """Put one document and its chunks in place of its old ones, and count a change, in one transaction."""

    @abstractmethod
    def _delete(self, key: str) -> bool:
        """Drop one document and its chunks (counting a change) in one transaction; False if it was not there."""

    @abstractmethod
    def _has(self, path: str) -> bool: ...

    @abstractmethod
    def _embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, float32 embeddings) of every chunk, by id."""

    @abstractmethod
    def documents(self) -> list[dict[str, object]]: ...

    @abstractmethod
    def stats(self) -> dict[str, object]: ...

    @abstractmethod
    def chunks(self, ids: Iterable[int]) -> list[StoredChunk]:
        """The chunks with these ids, in the order given (unknown ids are left out)."""

    @abstractmethod
    def lexical(self, terms: list[str], k: int) -> list[tuple[int, float]]:
        """Chunk ids by full-text rank over title and text for any of `terms` (best first; higher is better)."""

    @abstractmethod
    def close(self) -> None: ...

    _matrix: tuple[str, np.ndarray, np.ndarray] | None = None  # (version, ids, embeddings)

    def add(self, paths: Iterable[Path], encoder: Embedder, max_words: int = 200,
            progress: Callable[[str], None] | None = None, exclude: Iterable[str] = ()) -> AddReport:
        """Parse, chunk, embed and index the files under `paths`; unchanged files are skipped. Each document is
        written in its own transaction: one that fails to parse raises with nothing of it written."""
        started = time.perf_counter()
        report = AddReport()
        known = self._known()
        for file in expand(paths, exclude):
            key = str(file.resolve())
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise ConfigError(f"{file}: cannot read it ({exc.strerror})") from None
            digest = hashlib.sha256(data).hexdigest()
            if known.get(key) == digest:
                report.unchanged.append(key)
                continue
            t0 = time.perf_counter()
            chunks = chunk_sections(key, parse(file, data), max_words)  # a ParseError names the file
            t1 = time.perf_counter()
            vectors = encoder.encode([c.text for c in chunks]) if chunks else np.zeros((0, DIMENSIONS), np.float32)
            report.parse_s += t1 - t0
            report.embed_s += time.perf_counter() - t1
            self._replace(key, digest, format_of(file), len(data), chunks, vectors)
            (report.updated if key in known else report.added).append(key)
            report.chunks += len(chunks)
            report.bytes += len(data)
            if progress is not None:
                progress(f"{file}: {len(chunks)} chunks")
        report.seconds = time.perf_counter() - started
        return report

    def remove_document(self, path: str) -> bool:
        """Drop one document (by the path it was added under, or that path resolved) and its chunks."""
        return self._delete(path if self._has(path) else str(Path(path).resolve()))

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, embeddings) of every chunk, loaded once per version of the knowledge base."""
        version = self.version
        if self._matrix is None or self._matrix[0] != version:
            ids, emb = self._embeddings()
            self._matrix = (version, ids, emb)
        return self._matrix[1], self._matrix[2]


def embedding_rows(rows: list[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, matrix) from (id, float32 bytes) rows."""
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    emb = (np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), DIMENSIONS)
           if rows else np.zeros((0, DIMENSIONS), np.float32))
    return ids, emb


def chunk_rows(key: str, chunks: list[Chunk], vectors: np.ndarray) -> list[tuple[str, str, int, str, str, bytes]]:
    """(document, anchor, part, title, text, embedding bytes) of each chunk of one document."""
    return [(key, c.anchor, c.part, c.title, c.text, np.asarray(v, np.float32).tobytes())
            for c, v in zip(chunks, vectors, strict=True)]


class KnowledgeBase(KnowledgeStore):
    """One knowledge base file (SQLite). Not shared across threads: open one per user (they are cheap)."""

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path = path
        self.name = name or path.stem
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('encoder', ?)", (ENCODER,))
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('version', '0')")
        # A knowledge base removed and built again counts its versions from 0 again: the generation (new per
        # file) keeps its versions apart, so nothing keyed on an old one (cached answers) matches a new one.
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', ?)", (uuid.uuid4().hex[:12],))
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    @property
    def version(self) -> str:
        rows = dict(self._db.execute("SELECT key, value FROM meta WHERE key IN ('generation', 'version')"))
        return f"{rows['generation']}.{rows['version']}"

    def _known(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT path, sha256 FROM documents"))

    def _replace(self, key: str, digest: str, fmt: str, size: int, chunks: list[Chunk], vectors: np.ndarray) -> None:
        with self._db:
            self._db.execute("DELETE FROM documents WHERE path = ?", (key,))
            self._db.execute("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)",
                             (key, digest, fmt, size, len(chunks), time.time()))
            self._db.executemany(
                "INSERT INTO chunks (document, anchor, part, title, text, embedding) VALUES (?, ?, ?, ?, ?, ?)",
                chunk_rows(key, chunks, vectors))
            self._bump()

    def _delete(self, key: str) -> bool:
        with self._db:
            gone = self._db.execute("DELETE FROM documents WHERE path = ?", (key,)).rowcount
            if gone:
                self._bump()
        return bool(gone)

    def _has(self, path: str) -> bool:
        return self._db.execute("SELECT 1 FROM documents WHERE path = ?", (path,)).fetchone() is not None

    def _bump(self) -> None:
        self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'version'")

    def documents(self) -> list[dict[str, object]]:
        rows = self._db.execute("SELECT path, format, bytes, chunks, added_at FROM documents ORDER BY path")
        return [{"path": p, "format": f, "bytes": b, "chunks": c, "added_at": a} for p, f, b, c, a in rows]

    def stats(self) -> dict[str, object]:
        docs, chunks = self._db.execute("SELECT COUNT(*), COALESCE(SUM(chunks), 0) FROM documents").fetchone()
        return {"name": self.name, "documents": docs, "chunks": chunks, "version": self.version,
                "encoder": ENCODER, "file": str(self.path), "file_bytes": _size(self.path)}

    def chunks(self, ids: Iterable[int]) -> list[StoredChunk]:
        wanted = list(ids)
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        rows = self._db.execute(f"SELECT id, document, anchor, part, title, text FROM chunks WHERE id IN ({marks})",
                                wanted)
        by_id = {r[0]: StoredChunk(*r) for r in rows}
        return [by_id[i] for i in wanted if i in by_id]

    def lexical(self, terms: list[str], k: int) -> list[tuple[int, float]]:
        """BM25 (FTS5, title weighted 2, text 1)."""
        if not terms:
            return []
        query = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        rows = self._db.execute("SELECT rowid, bm25(chunks_fts, 2.0, 1.0) FROM chunks_fts WHERE chunks_fts MATCH ? "
                                "ORDER BY bm25(chunks_fts, 2.0, 1.0) LIMIT ?", (query, k))
        return [(i, -score) for i, score in rows]  # FTS5's bm25() is lower-is-better

    def _embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        return embedding_rows(self._db.execute("SELECT id, embedding FROM chunks ORDER BY id").fetchall())


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def kb_path(home: Path, name: str) -> Path:
    return home / "kb" / f"{name}.sqlite"


def open_kb(home: Path, name: str, database_url: str | None = None, migrate: bool = True) -> KnowledgeStore:
    """Knowledge base `name`: in the shared PostgreSQL database when `database_url` is given (`migrate`: check its
    schema first), else its SQLite file under `home`."""
    if database_url:
        from smallfleet.kb.pg_store import PostgresKnowledgeBase

        return PostgresKnowledgeBase(database_url, name, migrate=migrate)
    return KnowledgeBase(kb_path(home, name), name)


def empty_message(home: Path, name: str, database_url: str | None = None) -> str:
    """What to tell someone searching `name` with nothing in it, and the likely reason when the database is used
    while an index file from before is still under `home`."""
    message = f"knowledge base {name!r} is empty: fill it with `smallfleet kb add {name} PATH...`"
    if database_url and kb_path(home, name).exists():
        message += (f" (with SMALLFLEET_DATABASE_URL set, knowledge bases are read from PostgreSQL, not from "
                    f"{kb_path(home, name)}: add its documents again with the URL set)")
    return message


def kb_exists(home: Path, name: str, database_url: str | None = None) -> bool:
    """Whether `name` has an index (any document ever added and not removed since)."""
    if not database_url:
        return kb_path(home, name).exists()
    kb = open_kb(home, name, database_url)
    try:
        return bool(kb.version)
    finally:
        kb.close()


def remove_kb(home: Path, name: str, database_url: str | None = None) -> bool:
    """Delete `name`'s whole index; False when it had none."""
    if database_url:
        from smallfleet.kb.pg_store import PostgresKnowledgeBase

        kb = PostgresKnowledgeBase(database_url, name)
        try:
            return kb.drop()
        finally:
            kb.close()
    path = kb_path(home, name)
    if not path.exists():
        return False
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        p.unlink(missing_ok=True)
    return True
