"""Budgets, enforced where the money is spent: every call to a priced remote model.

The guard's wrapper (`guard.egress.GuardedRemote`) is the one way to a remote model, so no path (a routed
contract, a direct model call, a live quality check, a workflow hop, the Responses API) can spend around a
budget. Before a call it reserves the call's most expensive outcome (`hold_tokens`: the prompt's bytes as an
upper bound on its tokens, plus `max_tokens`) against every budget that applies: the contract's and the
tenant's, each per lifetime, UTC day and UTC month. The reservation is one conditional update in the
trace store's ledger (`trace.store`), atomic across every process and replica sharing the store, so a
budget is never spent twice. After the call the unused part of the hold is given back (`settle`); if the
upstream reports more tokens than the bound (it should not), the excess is charged too, so the ledger stays
true, and a limit can then be passed by at most that one call's excess.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from smallfleet.backends.base import ChatMessage, ModelInfo, SamplingParams
from smallfleet.errors import SmallfleetError
from smallfleet.trace.store import NANO, BudgetKey

WINDOWS = ("total", "day", "month")


class BudgetExhausted(SmallfleetError):
    """A budget would be passed by this call (429 `insufficient_quota` when it reaches a client)."""

    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"


class LedgerUnavailable(SmallfleetError):
    """The ledger (the trace store) could not be reached: priced calls are refused, never made unmetered."""

    status = 503
    type = "server_error"
    code = "budget_ledger_unavailable"


@dataclass(frozen=True)
class Limits:
    """Spend limits (USD) of one contract or tenant; None: no limit for that window."""

    total_usd: float | None = None
    per_day_usd: float | None = None
    per_month_usd: float | None = None

    def of(self, window: str) -> float | None:
        return {"total": self.total_usd, "day": self.per_day_usd, "month": self.per_month_usd}[window]

    @classmethod
    def of_config(cls, spec: object) -> Limits:
        """The limits of a contract spec or tenant config (`budget_usd`, `budget_per_day_usd`, ...)."""
        return cls(getattr(spec, "budget_usd", None), getattr(spec, "budget_per_day_usd", None),
                   getattr(spec, "budget_per_month_usd", None))

    @property
    def any(self) -> bool:
        return any(self.of(w) is not None for w in WINDOWS)


class Ledger(Protocol):
    """What the meter needs of a trace store."""

    def reserve(self, limits: Sequence[tuple[BudgetKey, int | None]], hold_nano: int) -> BudgetKey | None: ...

    def settle(self, keys: Sequence[BudgetKey], delta_nano: int) -> None: ...

    def spent(self, keys: Sequence[BudgetKey]) -> dict[BudgetKey, int]: ...


def window_names(now: float) -> dict[str, str]:
    """The ledger's window names at `now` (UTC): total, this day, this month."""
    t = datetime.fromtimestamp(now, tz=timezone.utc)
    return {"total": "total", "day": f"day:{t:%Y-%m-%d}", "month": f"month:{t:%Y-%m}"}


def hold_tokens(info: ModelInfo, messages: Sequence[ChatMessage], params: SamplingParams,
                constraint: object = None) -> tuple[int, int]:
    """The most tokens a call can bill (prompt, completion): every prompt byte as a token (byte-level BPE never
    does worse), the constraint sent with it (schema, tools) likewise, room for the chat template, and
    `max_tokens` (else the model's window) of output."""
    prompt = sum(len((m.content or "").encode()) + len(repr(m.tool_calls or "").encode()) + 16 for m in messages) + 64
    prompt += len(repr(constraint).encode()) if constraint is not None else 0
    return prompt, params.max_tokens or info.context_window or 4096


def to_nano(usd: float) -> int:
    return round(usd * NANO)


@dataclass(frozen=True)
class Hold:
    """A reservation: what was held and on which ledger rows."""

    keys: tuple[BudgetKey, ...]
    nano: int


class Meter:
    """Reserves and settles spend on the ledger. `contract_limits` and `tenant_limits` are read at each call, so
    a contract promoted or a fleet file reloaded applies at once."""

    def __init__(self, ledger: Ledger, contract_limits: Callable[[str], Limits | None],
                 tenant_limits: Callable[[str], Limits | None], clock: Callable[[], float] = time.time) -> None:
        self._ledger = ledger
        self._contract_limits = contract_limits
        self._tenant_limits = tenant_limits
        self._clock = clock

    def _rows(self, contract: str | None, tenant: str | None) -> list[tuple[BudgetKey, int | None]]:
        names = window_names(self._clock())
        rows: list[tuple[BudgetKey, int | None]] = []
        for scope, name, limits in (("contract", contract, self._contract_limits),
                                    ("tenant", tenant, self._tenant_limits)):
            if name is None:
                continue
            found = limits(name) or Limits()
            for window in WINDOWS:  # every window is charged, limited or not: a limit added later sees past spend
                limit = found.of(window)
                rows.append(((scope, name, names[window]), None if limit is None else to_nano(limit)))
        return rows

    def reserve(self, contract: str | None, tenant: str | None, usd: float) -> Hold | None:
        """Hold `usd` on every budget of `contract` and `tenant`, or raise `BudgetExhausted` naming the one it would
        pass. None when there is nothing to charge (no contract and no tenant, or a free call)."""
        rows = self._rows(contract, tenant)
        nano = to_nano(usd)
        if not rows or nano <= 0:
            return None
        refused = self._ledger.reserve(rows, nano)
        if refused is not None:
            scope, name, window = refused
            limit = dict(rows)[refused] or 0
            spent = self._ledger.spent([refused])[refused]
            raise BudgetExhausted(f"the {scope} {name!r} has no budget left for this call ({window}: "
                                  f"${spent / NANO:.4f} spent of ${limit / NANO:.4f}; this call may cost up to "
                                  f"${usd:.4f})")
        return Hold(tuple(k for k, _ in rows), nano)

    def settle(self, hold: Hold | None, actual_usd: float) -> None:
        """Replace a hold by what the call cost."""
        if hold is not None:
            self._ledger.settle(hold.keys, to_nano(actual_usd) - hold.nano)

    def spent(self, scope: str, name: str) -> dict[str, float]:
        """What `name` has spent (USD) per window: total, today, this month."""
        return spent_by_window(self._ledger, scope, name, self._clock())


def spent_by_window(ledger: Ledger, scope: str, name: str, now: float) -> dict[str, float]:
    """What `name` (a contract or tenant, by `scope`) has spent (USD) per window at `now`: total, today, month."""
    names = window_names(now)
    found = ledger.spent([(scope, name, names[w]) for w in WINDOWS])
    return {w: found[(scope, name, names[w])] / NANO for w in WINDOWS}


def exhausted(ledger: Ledger, scope: str, name: str, limits: Limits | None, now: float) -> str | None:
    """Which of `name`'s limits is reached ("day: $1.0000 spent of $1.0000"), or None (also when it has none)."""
    if limits is None or not limits.any:
        return None
    spent = spent_by_window(ledger, scope, name, now)
    for window in WINDOWS:
        limit = limits.of(window)
        if limit is not None and spent[window] >= limit:
            return f"{window}: ${spent[window]:.4f} spent of ${limit:.4f}"
    return None
