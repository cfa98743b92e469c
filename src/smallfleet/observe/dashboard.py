"""The dashboard's reads of the trace store: figures over a time window from the hourly rollups
(`trace.rollup`), with the definitions of `route.report` (local share, cost, the all-top-rung cost,
escalation reasons), and trace lists from the indexes on `created_at`.

It reads through the store's `reader()` (SQLite: a read-only connection of its own; PostgreSQL: the pool), so
a dashboard reading a large store never holds the trace writer's lock. The SQL is portable between both. Every query is bounded by the window (and a row limit where it lists), which keeps a page
fast on a store of millions of traces (`smallfleet bench dashboard`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from smallfleet.trace.record import Trace
from smallfleet.trace.rollup import COLUMNS, PERIOD_S, Rollup
from smallfleet.trace.store import Reader


@dataclass(frozen=True)
class Window:
    since: float
    until: float

    @classmethod
    def last(cls, hours: float, now: float | None = None) -> Window:
        """The last `hours` whole hours up to `now`: from the start of the hour `hours - 1` before this one (so
        every figure, from the hourly rollups or the traces, covers exactly the same traces)."""
        end = time.time() if now is None else now
        start = (end // PERIOD_S) * PERIOD_S - (max(1, math.ceil(hours)) - 1) * PERIOD_S
        return cls(start, end)


@dataclass(frozen=True)
class TraceFilter:
    contract: str | None = None
    model: str | None = None
    status: str | None = None
    reason: str | None = None
    before: float | None = None  # created_at of the last row of the previous page
    limit: int = 50


def _all_top(r: Rollup) -> float | None:
    """The all-top-rung cost of `r`'s routed requests, as `smallfleet report` prices it: the mean remote answer
    (accepted or shadow) times the requests, else the mean priced remote attempt (None when neither exists)."""
    if r.top_answers:
        return round(r.top_cost / r.top_answers * r.routed, 6)
    return round(r.priced_cost / r.priced_n * r.routed, 6) if r.priced_n else None


def _figures(r: Rollup) -> dict[str, Any]:
    return {"requests": r.requests, "routed": r.routed,
            "local_share": round(r.local / r.routed, 4) if r.routed else None,
            "cost_usd": round(r.cost, 6),
            "error_rate": round(r.errors / r.requests, 4) if r.requests else None,
            "rejected_rate": round(r.rejected / r.requests, 4) if r.requests else None}


class Dashboard:
    """Read-only queries over one trace store."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader

    def close(self) -> None:
        self._reader.close()

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return self._reader.rows(sql, args)

    def _rollups(self, window: Window, contract: str | None = None) -> list[tuple[int, str, Rollup]]:
        """The rollup rows of the hours `window` touches (of one contract, or all)."""
        first, last = int(window.since // PERIOD_S), int(window.until // PERIOD_S)
        sql = f"SELECT {', '.join(COLUMNS)} FROM trace_rollup WHERE hour BETWEEN ? AND ?"
        args: tuple[Any, ...] = (first, last)
        if contract is not None:
            sql, args = sql + " AND contract = ?", (*args, contract)
        rows = self._rows(sql, args)
        return [(r["hour"], r["contract"], Rollup.from_row(tuple(r[c] for c in COLUMNS))) for r in rows]

    def overview(self, window: Window, buckets: int = 48) -> dict[str, Any]:
        """Totals and a time series over `window`: requests, local share, cost against the all-top-rung cost,
        latency percentiles, error and 429 rates."""
        rows = self._rollups(window)
        total, per_contract = Rollup(), {}
        width = max(float(PERIOD_S), (window.until - window.since) / buckets)
        series = [Rollup() for _ in range(int(math.ceil((window.until - window.since) / width)) or 1)]
        for hour, contract, r in rows:
            total.merge(r)
            if contract:
                per_contract.setdefault(contract, Rollup()).merge(r)
            series[min(len(series) - 1, max(0, int((hour * PERIOD_S - window.since) // width)))].merge(r)
        contracts = [self._contract_figures(name, r) for name, r in
                     sorted(per_contract.items(), key=lambda kv: -kv[1].requests)]
        all_top = [c["cost_all_top_rung_usd"] for c in contracts if c["cost_all_top_rung_usd"] is not None]
        return {
            "window": {"since": window.since, "until": window.until}, **_figures(total),
            "cost_all_top_rung_usd": round(sum(all_top), 6) if all_top else None,
            "latency_ms": {p: total.percentile(q) for p, q in (("p50", 50), ("p95", 95), ("p99", 99))},
            "series": [{"t": window.since + i * width, **_figures(r), "cost_all_top_rung_usd": _all_top(r),
                        "latency_mean_ms": round(r.latency_sum / r.latency_n, 1) if r.latency_n else None}
                       for i, r in enumerate(series)],
            "contracts": contracts,
        }

    @staticmethod
    def _contract_figures(name: str, r: Rollup) -> dict[str, Any]:
        return {"contract": name, **_figures(r), "cost_all_top_rung_usd": _all_top(r)}

    def contract(self, name: str, window: Window) -> dict[str, Any]:
        """One contract over `window`: its figures, the share answered per rung (and model), the escalation
        reasons."""
        total = Rollup()
        for _, _, r in self._rollups(window, name):
            total.merge(r)
        n = total.requests
        rungs = []
        for key, (answers, latency) in sorted(total.rungs.items(), key=lambda kv: (int(kv[0].split("|")[0]), kv[0])):
            rung, model = key.split("|", 1)
            rungs.append({"rung": int(rung), "model": model or None, "answers": int(answers),
                          "share": round(answers / n, 4) if n else None,
                          "latency_mean_ms": round(latency / answers, 1) if answers else None})
        reasons = [{"reason": k, "n": v} for k, v in sorted(total.reasons.items(), key=lambda kv: (-kv[1], kv[0]))]
        return {"contract": name, "summary": self._contract_figures(name, total) if n else None,
                "rungs": rungs, "escalations": reasons}

    def traces(self, window: Window, f: TraceFilter) -> list[dict[str, Any]]:
        """Traces in `window` matching `f`, newest first (a page of `f.limit`; the next page: `before` = the last
        row's created_at)."""
        clauses, args = ["created_at >= ?", "created_at < ?"], [window.since, min(window.until, f.before or
                                                                                 window.until)]
        for column, value in (("contract", f.contract), ("status", f.status), ("reason", f.reason)):
            if value:
                clauses.append(f"{column} = ?")
                args.append(value)
        if f.model:  # the model that answered (plain requests and contracts alike)
            clauses.append("backend_model = ?")
            args.append(f.model)
        return self._rows(
            "SELECT id, created_at, endpoint, model, backend_model, contract, status, http_status, rung, reason, "
            "latency_ms, cost, tenant, error_type FROM traces WHERE " + " AND ".join(clauses)
            + " ORDER BY created_at DESC LIMIT ?", (*args, max(1, min(f.limit, 500))))

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """One trace whole (every attempt with its signals, output and latency) and its label, if any."""
        rows = self._rows("SELECT * FROM traces WHERE id = ?", (trace_id,))
        if not rows:
            return None
        record = Trace.from_row(rows[0])
        label = self._rows("SELECT reference, source, created_at FROM labels WHERE trace_id = ?", (trace_id,))
        out = {k: v for k, v in vars(record).items()}
        out["label"] = label[0] if label else None
        return json.loads(json.dumps(out, default=str))
