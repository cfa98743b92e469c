"""What every trace store offers, and which one a process opens.

Two stores implement it: SQLite (`trace.sqlite`, one file under SMALLFLEET_HOME, the zero-setup default) and
PostgreSQL (`trace.postgres`, selected by `SMALLFLEET_DATABASE_URL`), which lets several gateway replicas on
several machines share traces, labels, stored responses and budgets. One contract test suite
(`tests/trace/test_store_contract.py`) runs against both.

The budget ledger lives here too: spend per (scope, name, window) in integer nano-dollars, reserved
atomically in the database before a priced call and settled after it, so no number of processes sharing
one store can spend a budget twice (`guard.budget`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from smallfleet.config.settings import Settings
from smallfleet.trace.record import Trace

# (scope, name, window): scope "contract" or "tenant"; window "total", "day:YYYY-MM-DD" or "month:YYYY-MM" (UTC)
BudgetKey = tuple[str, str, str]
NANO = 1_000_000_000  # ledger unit: nano-dollars, so sums are exact integers


@dataclass(frozen=True)
class TraceQuery:
    """Filters for listing traces; newest first."""

    limit: int = 20
    model: str | None = None
    contract: str | None = None
    status: str | None = None
    before: float | None = None
    endpoint: str | None = None
    tenant: str | None = None


class Reader(Protocol):
    """Read-only SQL over a store (the dashboard's): `?` placeholders, rows as dicts."""

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class TraceStore(Protocol):
    """Traces, their labels, stored responses, and the budget ledger."""

    kind: str  # "sqlite" | "postgres"

    def applied_migrations(self) -> list[str]: ...

    def append(self, trace: Trace) -> None: ...

    def append_many(self, traces: Iterable[Trace]) -> None: ...

    def get(self, trace_id: str) -> Trace | None: ...

    def query(self, q: TraceQuery = TraceQuery()) -> list[Trace]: ...

    def add_label(self, trace_id: str, reference: str, source: str = "feedback", replace: bool = True) -> None: ...

    def label_sources(self, contract: str) -> dict[str, tuple[str, str]]: ...

    def labels(self, contract: str) -> dict[str, str]: ...

    def run(self, run_id: str) -> list[Trace]: ...

    def put_response(self, response_id: str, created_at: float, tenant: str | None, items: str, body: str) -> None: ...

    def get_response(self, response_id: str) -> tuple[str | None, str, str] | None: ...

    def reserve(self, limits: Sequence[tuple[BudgetKey, int | None]], hold_nano: int) -> BudgetKey | None: ...

    def settle(self, keys: Sequence[BudgetKey], delta_nano: int) -> None: ...

    def spent(self, keys: Sequence[BudgetKey]) -> dict[BudgetKey, int]: ...

    def purge(self, before: float) -> dict[str, int]: ...

    def count(self) -> int: ...

    def reader(self) -> Reader: ...

    def close(self) -> None: ...


def sorted_limits(limits: Sequence[tuple[BudgetKey, int | None]]) -> list[tuple[BudgetKey, int | None]]:
    """One entry per key (the tightest limit), in key order: every process locks ledger rows in the same order,
    so concurrent reservations never deadlock."""
    tightest: dict[BudgetKey, int | None] = {}
    for key, limit in limits:
        held = tightest.get(key)
        if key in tightest and held is not None and (limit is None or held <= limit):
            continue
        tightest[key] = limit
    return sorted(tightest.items())


def like_prefix(text: str) -> str:
    """A LIKE pattern (with `ESCAPE '\\'`) for values starting with `text`, its own wildcards taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def open_store(settings: Settings) -> TraceStore:
    """PostgreSQL when `SMALLFLEET_DATABASE_URL` is set, else the SQLite file under SMALLFLEET_HOME."""
    if settings.database_url:
        from smallfleet.trace.postgres import PostgresTraceStore

        return PostgresTraceStore(settings.database_url)
    from smallfleet.trace.sqlite import SQLiteTraceStore

    return SQLiteTraceStore(settings.trace_db)
