"""The knowledge bases of one fleet, opened on first use and searched one request at a time.

The router holds one `Library`; grounded contracts name a knowledge base and the library searches it, in its
SQLite file under the home or, with a database URL, in the shared PostgreSQL database (`kb.store.open_kb`).
The sentence encoder (the expensive part: about 20 s to load on this machine) is loaded once, on the
first search, and shared by every knowledge base.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from smallfleet.errors import KnowledgeBaseUnavailable
from smallfleet.kb.retrieve import Retrieval, Retriever
from smallfleet.kb.store import Embedder, kb_path, open_kb

T = TypeVar("T")


class Library:
    def __init__(self, home: Path, names: list[str], encoder: Callable[[], Embedder] | None = None,
                 database_url: str | None = None) -> None:
        self.home = home
        self.names = list(names)
        self.database_url = database_url
        self._make_encoder = encoder
        self._encoder: Embedder | None = None
        self._retrievers: dict[str, tuple[Retriever, int]] = {}  # name -> (retriever, inode of its file or 0)
        self._lock = threading.Lock()  # SQLite connections and the encoder serve one search at a time

    def _retriever(self, name: str) -> Retriever:
        """The open retriever of `name`, never one over an index that is gone or empty: a SQLite file removed or
        replaced (`kb remove`, then `kb add`) is reopened; on PostgreSQL every search reads the version, and the
        embeddings again when it changed."""
        if name not in self.names:
            raise KnowledgeBaseUnavailable(f"no knowledge base {name!r} in the fleet file")
        empty = KnowledgeBaseUnavailable(f"knowledge base {name!r} is empty: fill it with `smallfleet kb add {name} "
                                         "PATH...`")
        identity = 0
        if not self.database_url:
            try:
                identity = kb_path(self.home, name).stat().st_ino
            except FileNotFoundError:
                self._drop(name)
                raise empty from None
        held = self._retrievers.get(name)
        if held is not None and held[1] == identity:
            if not len(held[0].kb.matrix()[0]):
                raise empty
            return held[0]
        self._drop(name)
        kb = open_kb(self.home, name, self.database_url)
        if not len(kb.matrix()[0]):
            kb.close()
            raise empty
        if self._encoder is None:  # loaded once a knowledge base has something to search
            if self._make_encoder is None:
                from smallfleet.embeddings import Encoder

                self._make_encoder = Encoder
            self._encoder = self._make_encoder()
        retriever = Retriever(kb, self._encoder)
        self._retrievers[name] = (retriever, identity)
        return retriever

    def _drop(self, name: str) -> None:
        held = self._retrievers.pop(name, None)
        if held is not None:
            held[0].kb.close()

    def search(self, name: str, query: str, k: int) -> Retrieval:
        with self._lock:
            return self._reading(name, lambda r: r.search(query, k))

    def version(self, name: str) -> str:
        with self._lock:
            return self._reading(name, lambda r: r.kb.version)

    def _reading(self, name: str, read: Callable[[Retriever], T]) -> T:
        """`read` of `name`'s retriever; a database that fails (a PostgreSQL server restarted or unreachable, a
        broken file) is a 503 naming it, and the connection is opened afresh on the next request."""
        failures: tuple[type[Exception], ...] = (sqlite3.Error, OSError)
        if self.database_url:
            import psycopg

            failures += (psycopg.Error,)
        try:
            return read(self._retriever(name))
        except KnowledgeBaseUnavailable:
            raise
        except failures as exc:
            self._drop_quietly(name)
            raise KnowledgeBaseUnavailable(f"knowledge base {name!r} cannot be read: {exc}") from exc

    def _drop_quietly(self, name: str) -> None:
        try:
            self._drop(name)
        except Exception:  # noqa: BLE001 - closing a broken connection may fail too; it is dropped either way
            self._retrievers.pop(name, None)

    def close(self) -> None:
        with self._lock:
            for name in list(self._retrievers):
                self._drop(name)
