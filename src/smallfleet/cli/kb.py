"""`smallfleet kb add|list|show|search|remove|eval`: knowledge bases declared in the fleet file.

Each knowledge base is one SQLite file under `$SMALLFLEET_HOME/kb/`, or rows in the PostgreSQL database of
`SMALLFLEET_DATABASE_URL` when it is set (see `kb.store`). `add` indexes
files and directories (Markdown, HTML, text, PDF, FAQ CSV/JSONL) and skips what has not changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from smallfleet.cli.errors import one_line_errors
from smallfleet.config.settings import Settings
from smallfleet.errors import ConfigError

kb_app = typer.Typer(help="Knowledge bases: add documents, list, show, search, remove, evaluate.",
                     no_args_is_help=True)


def _declared(name: str):  # noqa: ANN202 - (KnowledgeBaseConfig, Settings)
    from smallfleet.config.fleet import load_fleet

    settings = Settings.from_env()
    return load_fleet(settings.config_path).knowledge_base(name), settings


def _open(name: str, must_exist: bool = True):  # noqa: ANN202 - a KnowledgeStore
    from smallfleet.kb.store import empty_message, kb_exists, open_kb

    _, settings = _declared(name)
    if must_exist and not kb_exists(settings.home, name, settings.database_url):
        raise ConfigError(empty_message(settings.home, name, settings.database_url))
    return open_kb(settings.home, name, settings.database_url)


def _print(value: object, as_json: bool) -> None:
    typer.echo(json.dumps(value, indent=None if as_json else 2, default=str))


@kb_app.command("add")
@one_line_errors
def kb_add(name: str = typer.Argument(..., help="a knowledge base of the fleet file"),
           paths: list[Path] = typer.Argument(..., help="files or directories (Markdown, HTML, text, PDF, "
                                                         "FAQ .csv/.jsonl)"),
           exclude: list[str] = typer.Option([], "--exclude", help="skip files under a directory whose path (relative "
                                                                   "to it) matches this glob; repeatable"),
           as_json: bool = typer.Option(False, "--json", help="print one JSON object")) -> None:
    """Index PATHS into NAME; documents whose bytes have not changed are skipped, changed ones re-indexed."""
    from smallfleet.embeddings import Encoder

    config, _ = _declared(name)
    kb = _open(name, must_exist=False)
    try:
        report = kb.add(paths, Encoder(), max_words=config.chunk_words, exclude=exclude,
                        progress=None if as_json else lambda line: typer.echo(line, err=True))
        result = {**report.as_dict(), **kb.stats()}
    finally:
        kb.close()
    _print(result, as_json)


@kb_app.command("list")
@one_line_errors
def kb_list(as_json: bool = typer.Option(False, "--json", help="one JSON object per line")) -> None:
    """The knowledge bases of the fleet file: documents, chunks and size on disk."""
    from smallfleet.config.fleet import load_fleet
    from smallfleet.kb.store import kb_exists, open_kb

    settings = Settings.from_env()
    for spec in load_fleet(settings.config_path).knowledge_bases:
        if kb_exists(settings.home, spec.name, settings.database_url):
            kb = open_kb(settings.home, spec.name, settings.database_url)
            try:
                stats = kb.stats()
            finally:
                kb.close()
        else:
            stats = {"name": spec.name, "documents": 0, "chunks": 0, "file_bytes": 0}
        row = {**stats, "description": spec.description}
        if as_json:
            typer.echo(json.dumps(row))
        else:
            typer.echo(f"{spec.name:<24} {row['documents']:>6} documents {row['chunks']:>7} chunks "
                       f"{int(row['file_bytes']) / 1e6:>8.1f} MB  {spec.description}")


@kb_app.command("show")
@one_line_errors
def kb_show(name: str, as_json: bool = typer.Option(False, "--json", help="print one JSON object")) -> None:
    """NAME's statistics and documents."""
    kb = _open(name)
    try:
        _print({**kb.stats(), "documents_indexed": kb.documents()}, as_json)
    finally:
        kb.close()


@kb_app.command("search")
@one_line_errors
def kb_search(name: str, query: str, k: int = typer.Option(5, "-k", min=1, max=50, help="passages to return"),
              mode: str = typer.Option("hybrid", help="hybrid, lexical or dense"),
              as_json: bool = typer.Option(False, "--json", help="print one JSON object")) -> None:
    """The top K passages of NAME for QUERY, with where each came from and why it ranked."""
    from smallfleet.embeddings import Encoder
    from smallfleet.kb.retrieve import Retriever

    if mode not in ("hybrid", "lexical", "dense"):
        raise ConfigError(f"--mode must be hybrid, lexical or dense, not {mode!r}")
    kb = _open(name)
    try:
        found = Retriever(kb, Encoder()).search(query, k, mode)
    finally:
        kb.close()
    hits = [{"id": h.chunk.cite_id, "location": h.chunk.location, "title": h.chunk.title, "score": round(h.score, 5),
             "lexical_rank": h.lexical_rank, "dense_rank": h.dense_rank, "cosine": round(h.cosine, 4),
             "text": h.chunk.text} for h in found.hits]
    if as_json:
        _print({"query": query, "top_cosine": round(found.top_cosine, 4), "margin": round(found.margin, 4),
                "ms": round(found.ms, 1), "hits": hits}, True)
        return
    for h in hits:
        typer.echo(f"[{h['id']}] {h['location']}  (bm25 #{h['lexical_rank']}, dense #{h['dense_rank']}, "
                   f"cos {h['cosine']})")
        body = h["text"].split("\n", 1)[-1]
        typer.echo("    " + (body[:300] + ("..." if len(body) > 300 else "")).replace("\n", " "))


@kb_app.command("remove")
@one_line_errors
def kb_remove(name: str, document: str | None = typer.Option(None, help="remove only this document (its path)")
              ) -> None:
    """Delete NAME's index (the fleet file still declares it), or one document of it with --document."""
    from smallfleet.kb.store import remove_kb

    _, settings = _declared(name)
    if document is not None:
        kb = _open(name)
        try:
            if not kb.remove_document(document):
                raise ConfigError(f"{document!r} is not a document of {name!r} (see `smallfleet kb show {name}`)")
        finally:
            kb.close()
        typer.echo(f"removed {document} from {name}")
        return
    if not remove_kb(settings.home, name, settings.database_url):
        raise ConfigError(f"knowledge base {name!r} has no index to remove")
    typer.echo(f"removed the index of {name}")


@kb_app.command("eval")
@one_line_errors
def kb_eval(name: str, questions: Path = typer.Argument(..., exists=True, dir_okay=False,
                                                        help="JSON Lines: question, answer_in, kind, keywords"),
            modes: str = typer.Option("hybrid,lexical,dense", help="retrieval modes to compare"),
            contract: str | None = typer.Option(None, help="also answer every question through this grounded "
                                                            "contract and score the answers"),
            sample: int | None = typer.Option(None, min=1, help="answer only this many questions, evenly spaced "
                                                                "through the file (retrieval uses them all)"),
            as_json: bool = typer.Option(False, "--json", help="print one JSON object")) -> None:
    """Retrieval recall@k and MRR of NAME on QUESTIONS, per mode and kind; with --contract, answer accuracy,
    citation precision, local share, escalation reasons and latency of grounded answers."""
    from smallfleet.embeddings import Encoder
    from smallfleet.kb.evaluate import evaluate_retrieval, load_questions
    from smallfleet.kb.retrieve import Retriever

    wanted = tuple(m.strip() for m in modes.split(",") if m.strip())
    bad = [m for m in wanted if m not in ("hybrid", "lexical", "dense")]
    if bad or not wanted:
        raise ConfigError(f"--modes takes hybrid, lexical and dense, not {', '.join(bad) or 'nothing'}")
    items = load_questions(questions)
    kb = _open(name)
    try:
        report: dict[str, object] = {"knowledge_base": name,
                                     "retrieval": evaluate_retrieval(Retriever(kb, Encoder()), items, wanted)}
        if contract is not None:
            report["answers"] = _answers(name, contract, items, sample, kb)
    finally:
        kb.close()
    _print(report, as_json)


def _answers(name: str, contract: str, items: list, sample: int | None, kb) -> dict[str, object]:  # noqa: ANN001
    from smallfleet.kb.evaluate import evaluate_answers
    from smallfleet.runtime import open_runtime

    if sample is not None and sample < len(items):
        step = len(items) / sample
        items = [items[int(i * step)] for i in range(sample)]

    def locate(cite_id: str) -> str:
        found = kb.chunks([int(cite_id[1:])]) if cite_id[1:].isdigit() else []
        return f"{Path(found[0].document).name}#{found[0].anchor}" if found else ""

    with open_runtime() as runtime:
        runtime.router.cache = None  # measure the model and the ladder, not the cache (and leave it as it was)
        spec = runtime.router.contracts.get(contract)
        if spec is None or spec.spec.grounding is None or spec.spec.grounding.knowledge_base != name:
            raise ConfigError(f"--contract {contract!r} must be a contract of the fleet file grounded on {name!r}")
        return evaluate_answers(runtime, contract, items, locate)
