"""`smallfleet kb ...` and `smallfleet cache ...`: the commands, their output and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smallfleet.cli.main import app
from tests.kb.test_store_retrieve import WordHashEmbedder


@pytest.fixture(params=["sqlite", "postgres"])
def home(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home whose knowledge bases are SQLite files, or (with SMALLFLEET_DATABASE_URL) rows in PostgreSQL."""
    if request.param == "postgres":
        monkeypatch.setenv("SMALLFLEET_DATABASE_URL", request.getfixturevalue("pg_url"))
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models: [{kind: fake, id: small}]\nknowledge_bases: [{name: help, description: Help pages}]\n")
    monkeypatch.setenv("SMALLFLEET_HOME", str(tmp_path))
    monkeypatch.setenv("SMALLFLEET_CONFIG", str(fleet))
    monkeypatch.setattr("smallfleet.embeddings.Encoder", WordHashEmbedder)  # no model load in CLI tests
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "shipping.md").write_text("# Shipping\n\n## Costs\n\nShipping is free for orders over fifty euros.\n")
    (docs / "faq.csv").write_text("question,answer\nCan I return an item?,Yes within thirty days.\n")
    (tmp_path / "questions.jsonl").write_text(
        '{"_about": "header"}\n'
        '{"id": "q1", "question": "is shipping free", "answer_in": ["shipping.md#costs"], "kind": "paraphrase"}\n'
        '{"id": "q2", "question": "return an item", "answer_in": ["faq.csv#entry 1"], "kind": "keyword"}\n'
        '{"id": "q3", "question": "who won the match", "answer_in": [], "kind": "unanswerable"}\n')
    return tmp_path


def test_add_list_show_search_remove(home: Path) -> None:
    runner = CliRunner()
    added = runner.invoke(app, ["kb", "add", "help", str(home / "docs"), "--json"])
    assert added.exit_code == 0, added.output
    report = json.loads(added.stdout)
    assert (report["added"], report["chunks"], report["documents"]) == (2, 2, 2)
    again = json.loads(runner.invoke(app, ["kb", "add", "help", str(home / "docs"), "--json"]).stdout)
    assert (again["added"], again["unchanged"]) == (0, 2)
    listed = runner.invoke(app, ["kb", "list"])
    assert "help" in listed.stdout and "2 documents" in listed.stdout and "Help pages" in listed.stdout
    shown = json.loads(runner.invoke(app, ["kb", "show", "help", "--json"]).stdout)
    assert sorted(Path(d["path"]).name for d in shown["documents_indexed"]) == ["faq.csv", "shipping.md"]
    found = json.loads(runner.invoke(app, ["kb", "search", "help", "free shipping", "--json"]).stdout)
    assert found["hits"][0]["location"].endswith("shipping.md#costs")
    text = runner.invoke(app, ["kb", "search", "help", "free shipping"]).stdout
    assert text.startswith("[c") and "shipping.md#costs" in text
    removed = runner.invoke(app, ["kb", "remove", "help", "--document", str(home / "docs" / "faq.csv")])
    assert removed.exit_code == 0 and json.loads(runner.invoke(app, ["kb", "show", "help", "--json"]).stdout)[
        "chunks"] == 1
    assert runner.invoke(app, ["kb", "remove", "help"]).exit_code == 0
    assert not (home / "kb" / "help.sqlite").exists()
    gone = runner.invoke(app, ["kb", "search", "help", "free shipping"])
    assert gone.exit_code != 0 and "knowledge base 'help' is empty" in gone.output
    assert "has no index to remove" in runner.invoke(app, ["kb", "remove", "help"]).output


def test_eval_reports_recall_and_mrr_per_mode(home: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["kb", "add", "help", str(home / "docs")])
    result = runner.invoke(app, ["kb", "eval", "help", str(home / "questions.jsonl"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["retrieval"]
    assert report["questions"] == 3 and report["answerable"] == 2
    assert report["lexical"]["recall@1"] == 1.0 and report["hybrid"]["mrr"] == 1.0
    assert set(report["hybrid"]["by_kind"]) == {"paraphrase", "keyword"}


@pytest.mark.parametrize(("args", "message"), [
    (["kb", "add", "nope", "x"], "no knowledge base 'nope' in the fleet file (declared: help)"),
    (["kb", "search", "help", "q"], "knowledge base 'help' is empty: fill it with `smallfleet kb add help PATH...`"),
    (["kb", "add", "help", "/no/such/file.md"], "/no/such/file.md: no such file or directory"),
    (["kb", "search", "help", "q", "--mode", "fuzzy"], "--mode must be hybrid, lexical or dense"),
])
def test_mistakes_are_one_line_errors(home: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output


def test_a_bad_document_is_named_and_nothing_of_it_is_kept(home: Path) -> None:
    (home / "docs" / "bad.jsonl").write_text("{oops\n")
    result = CliRunner().invoke(app, ["kb", "add", "help", str(home / "docs" / "bad.jsonl")])
    assert result.exit_code != 0 and "bad.jsonl: line 1 is not JSON" in result.output


def test_cache_stats_and_purge(home: Path) -> None:
    from smallfleet.cache.store import AnswerCache, Entry

    cache = AnswerCache(home / "cache.db")
    cache.put(Entry("k", "", "triage", "v", "hi", {"content": "billing"}), ttl_s=60)
    cache.count("triage", "miss")
    cache.close()
    runner = CliRunner()
    stats = json.loads(runner.invoke(app, ["cache", "stats", "--json"]).stdout)
    assert stats["entries"] == 1 and stats["contracts"]["triage"]["miss"] == 1
    assert "triage" in runner.invoke(app, ["cache", "stats"]).stdout
    assert runner.invoke(app, ["cache", "purge", "--contract", "triage"]).stdout.strip() == "purged 1 cached answer"


def test_a_database_that_cannot_be_reached_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from smallfleet.sim.serve import free_port

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models: [{kind: fake, id: small}]\nknowledge_bases: [{name: help}]\n")
    monkeypatch.setenv("SMALLFLEET_HOME", str(tmp_path))
    monkeypatch.setenv("SMALLFLEET_CONFIG", str(fleet))
    monkeypatch.setenv("SMALLFLEET_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    for args in (["kb", "list"], ["kb", "search", "help", "q"], ["keys", "list"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1, result.output
        assert "error: cannot reach the database of SMALLFLEET_DATABASE_URL" in result.output
        assert "Traceback" not in result.output
