"""How every CLI command reports an error a user can fix: `error: message` on stderr, exit status 1."""

from __future__ import annotations

import functools
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

    return wrapper  # type: ignore[return-value]
