"""The knowledge bases of one fleet, opened on first use and searched one request at a time.

The router holds one `Library`; grounded contracts name a knowledge base and the library searches it, in its
SQLite file under the home or, with a database URL, in the shared PostgreSQL database (`kb.store.open_kb`).
The sentence encoder (the expensive part: about 20 s to load on this machine) is loaded once, on the
first search, and shared by every knowledge base.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from smallfleet.errors import KnowledgeBaseUnavailable
from smallfleet.kb.retrieve import Retrieval, Retriever
from smallfleet.kb.store import Embedder, KnowledgeStore, empty_message, kb_path, open_kb

T = TypeVar("T")
log = logging.getLogger("smallfleet.kb")


class Library:
    def __init__(self, home: Path, names: list[str], encoder: Callable[[], Embedder] | None = None,
                 database_url: str | None = None) -> None:
        self.home = home
        self.names = list(names)
        self.database_url = database_url
        self._make_encoder = encoder
        self._encoder: Embedder | None = None
        # name -> (open store, inode of its file or 0, its retriever once it had something to search)
        self._open: dict[str, tuple[KnowledgeStore, int, Retriever | None]] = {}
        self._migrated = False  # PostgreSQL: the schema is checked by the first store this library opens
        self._lock = threading.Lock()  # database connections and the encoder serve one search at a time

    def _retriever(self, name: str) -> Retriever:
        """The retriever of `name`, never one over an index that is gone or empty: a SQLite file removed or
        replaced (`kb remove`, then `kb add`) is reopened; on PostgreSQL the store stays open and every search
        reads the version (the embeddings again when it changed)."""
        if name not in self.names:
            raise KnowledgeBaseUnavailable(f"no knowledge base {name!r} in the fleet file")
        empty = KnowledgeBaseUnavailable(empty_message(self.home, name, self.database_url))
        identity = 0
        if not self.database_url:
            try:
                identity = kb_path(self.home, name).stat().st_ino
            except FileNotFoundError:
                self._drop(name)
                raise empty from None
        held = self._open.get(name)
        if held is None or held[1] != identity:
            self._drop(name)
            held = self._open[name] = (open_kb(self.home, name, self.database_url, migrate=not self._migrated),
                                       identity, None)
            self._migrated = True
        kb, _, retriever = held
        if not len(kb.matrix()[0]):
            raise empty
        if retriever is None:
            if self._encoder is None:  # loaded once a knowledge base has something to search
                if self._make_encoder is None:
                    from smallfleet.embeddings import Encoder

                    self._make_encoder = Encoder
                self._encoder = self._make_encoder()
            retriever = Retriever(kb, self._encoder)
            self._open[name] = (kb, identity, retriever)
        return retriever

    def _drop(self, name: str) -> None:
        held = self._open.pop(name, None)
        if held is not None:
            try:
                held[0].close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail too; it is dropped either way
                log.warning("could not close knowledge base %s", name, exc_info=True)

    def search(self, name: str, query: str, k: int) -> Retrieval:
        with self._lock:
            return self._reading(name, lambda r: r.search(query, k))

    def version(self, name: str) -> str:
        with self._lock:
            return self._reading(name, lambda r: r.kb.version)

    def _reading(self, name: str, read: Callable[[Retriever], T]) -> T:
        """`read` of `name`'s retriever. A connection the server dropped is opened again once; a database that
        still fails (a PostgreSQL server down, a broken file) is a 503 naming it."""
        failures: tuple[type[Exception], ...] = (sqlite3.Error, OSError)
        retry: tuple[type[Exception], ...] = ()
        if self.database_url:
            import psycopg

            failures, retry = failures + (psycopg.Error,), (psycopg.OperationalError,)
        for attempt in (1, 2):
            try:
                return read(self._retriever(name))
            except KnowledgeBaseUnavailable:
                raise
            except failures as exc:
                self._drop(name)
                if attempt == 1 and isinstance(exc, retry):
                    continue
                raise KnowledgeBaseUnavailable(f"knowledge base {name!r} cannot be read: {exc}") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            for name in list(self._open):
                self._drop(name)
