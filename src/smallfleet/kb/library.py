"""The knowledge bases of one fleet, opened on first use and searched one request at a time.

The router holds one `Library`; grounded contracts name a knowledge base and the library searches it.
The sentence encoder (the expensive part: about 20 s to load on this machine) is loaded once, on the
first search, and shared by every knowledge base.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from smallfleet.errors import KnowledgeBaseUnavailable
from smallfleet.kb.retrieve import Retrieval, Retriever
from smallfleet.kb.store import Embedder, KnowledgeBase, kb_path


class Library:
    def __init__(self, home: Path, names: list[str], encoder: Callable[[], Embedder] | None = None) -> None:
        self.home = home
        self.names = list(names)
        self._make_encoder = encoder
        self._encoder: Embedder | None = None
        self._retrievers: dict[str, tuple[Retriever, int]] = {}  # name -> (retriever, inode of its file)
        self._lock = threading.Lock()  # SQLite connections and the encoder serve one search at a time

    def _retriever(self, name: str) -> Retriever:
        """The open retriever of `name`, reopened when its file was removed or replaced (`kb remove`, then `kb
        add`): a running gateway never answers from an index that is gone."""
        if name not in self.names:
            raise KnowledgeBaseUnavailable(f"no knowledge base {name!r} in the fleet file")
        path = kb_path(self.home, name)
        empty = KnowledgeBaseUnavailable(f"knowledge base {name!r} is empty: fill it with `smallfleet kb add {name} "
                                         "PATH...`")
        try:
            inode = path.stat().st_ino
        except FileNotFoundError:
            self._drop(name)
            raise empty from None
        held = self._retrievers.get(name)
        if held is not None and held[1] == inode:
            return held[0]
        self._drop(name)
        kb = KnowledgeBase(path, name)
        if not kb.stats()["chunks"]:
            kb.close()
            raise empty
        if self._encoder is None:
            if self._make_encoder is None:
                from smallfleet.embeddings import Encoder

                self._make_encoder = Encoder
            self._encoder = self._make_encoder()
        retriever = Retriever(kb, self._encoder)
        self._retrievers[name] = (retriever, inode)
        return retriever

    def _drop(self, name: str) -> None:
        held = self._retrievers.pop(name, None)
        if held is not None:
            held[0].kb.close()

    def search(self, name: str, query: str, k: int) -> Retrieval:
        with self._lock:
            return self._retriever(name).search(query, k)

    def version(self, name: str) -> str:
        with self._lock:
            return self._retriever(name).kb.version

    def close(self) -> None:
        with self._lock:
            for name in list(self._retrievers):
                self._drop(name)
