"""`smallfleet cache stats|purge`: the answer cache of contracts with `cache:` (`$SMALLFLEET_HOME/cache.db`)."""

from __future__ import annotations

import json

import typer

from smallfleet.cli.errors import one_line_errors
from smallfleet.config.settings import Settings

cache_app = typer.Typer(help="The answer cache: statistics and purging.", no_args_is_help=True)


def _cache():  # noqa: ANN202 - an AnswerCache
    from smallfleet.cache.store import AnswerCache
    from smallfleet.config.fleet import load_fleet

    settings = Settings.from_env()
    return AnswerCache(settings.home / "cache.db", load_fleet(settings.config_path).cache.max_entries)


@cache_app.command("stats")
@one_line_errors
def cache_stats(as_json: bool = typer.Option(False, "--json", help="print one JSON object")) -> None:
    """Entries, and per contract: exact and semantic hits, misses, rejected near hits, sensitive bypasses."""
    cache = _cache()
    try:
        stats = cache.stats()
    finally:
        cache.close()
    if as_json:
        typer.echo(json.dumps(stats))
        return
    typer.echo(f"{stats['entries']} entries (at most {stats['max_entries']})")
    for name, f in sorted(stats["contracts"].items()):  # type: ignore[union-attr]
        rate = "-" if f["hit_rate"] is None else f"{100 * f['hit_rate']:.1f}%"
        typer.echo(f"{name:<28} entries {f['entries']:>6}  hits {f['hit_exact']} exact + {f['hit_semantic']} semantic"
                   f"  misses {f['miss']}  rejected near hits {f['rejected_near_hit']}  sensitive bypassed "
                   f"{f['bypass_sensitive']}  hit rate {rate}")


@cache_app.command("purge")
@one_line_errors
def cache_purge(contract: str | None = typer.Option(None, help="only this contract's answers"),
                expired: bool = typer.Option(False, "--expired", help="only answers past their TTL")) -> None:
    """Delete cached answers (all, one contract's, or the expired ones)."""
    cache = _cache()
    try:
        n = cache.purge(contract, expired_only=expired)
    finally:
        cache.close()
    typer.echo(f"purged {n} cached answer{'s' if n != 1 else ''}")
