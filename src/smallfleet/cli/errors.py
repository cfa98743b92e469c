"""How every CLI command reports an error a user can fix: `error: message` on stderr, exit status 1."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from smallfleet.errors import SmallfleetError

F = TypeVar("F", bound=Callable[..., Any])


def one_line_errors(fn: F) -> F:
    """Turn our errors into `error: message` on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SmallfleetError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(1) from None
        except Exception as exc:
            if not _unreachable_database(exc):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            typer.echo(f"error: cannot reach the database of SMALLFLEET_DATABASE_URL: {first}", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _unreachable_database(exc: Exception) -> bool:
    """A PostgreSQL server that refused, dropped or never answered a connection (psycopg and its pool are only
    looked at when a command loaded them)."""
    psycopg, pool = sys.modules.get("psycopg"), sys.modules.get("psycopg_pool")
    return (psycopg is not None and isinstance(exc, psycopg.OperationalError)) or \
        (pool is not None and isinstance(exc, pool.PoolTimeout))
