"""The dashboard's reads of the trace store: aggregates in SQL over a time window, with the definitions of
`route.report` (local share, cost, the all-top-rung cost, escalation reasons), on the derived columns each
trace carries (`Trace.derived`, migration m008) and the indexes on `created_at`.

It opens its own read-only connection, so a dashboard reading a large store never holds the trace
writer's lock. Every query is bounded by the window (and a row limit where it lists), which keeps a page
fast on a store of millions of traces (`smallfleet bench dashboard`).
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smallfleet.stats import percentile
from smallfleet.trace.record import Trace

_SUMS = ("COUNT(*) AS requests, SUM(contract IS NOT NULL) AS routed, SUM(answered_local) AS local, "
         "SUM(COALESCE(cost, 0)) AS cost, SUM(top_cost) AS top_cost, SUM(top_answers) AS top_answers, "
         "SUM(status != 'ok') AS errors, SUM(http_status = 429) AS rejected")


@dataclass(frozen=True)
class Window:
    since: float
    until: float

    @classmethod
    def last(cls, hours: float, now: float | None = None) -> Window:
        end = time.time() if now is None else now
        return cls(end - hours * 3600, end)


@dataclass(frozen=True)
class TraceFilter:
    contract: str | None = None
    model: str | None = None
    status: str | None = None
    reason: str | None = None
    before: float | None = None  # created_at of the last row of the previous page
    limit: int = 50


def _all_top(row: dict[str, Any]) -> float | None:
    """The all-top-rung cost of `row`'s routed requests: the mean top-rung answer times the requests (None when
    no remote answer prices it)."""
    return row["top_cost"] / row["top_answers"] * row["routed"] if row["top_answers"] else None


class Dashboard:
    """Read-only queries over one SQLite trace store."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._conn.execute(sql, args).fetchall()]

    def overview(self, window: Window, buckets: int = 48) -> dict[str, Any]:
        """Totals and a time series over `window`: requests, local share, cost against the all-top-rung cost,
        latency percentiles, error and 429 rates."""
        where, args = "created_at >= ? AND created_at < ?", (window.since, window.until)
        total = self._rows(f"SELECT {_SUMS} FROM traces WHERE {where}", args)[0]
        width = max(1.0, (window.until - window.since) / buckets)
        series = self._rows(
            f"SELECT CAST((created_at - ?) / ? AS INTEGER) AS bucket, {_SUMS}, AVG(latency_ms) AS latency_mean "
            f"FROM traces WHERE {where} GROUP BY bucket ORDER BY bucket", (window.since, width, *args))
        latencies = [r["latency_ms"] for r in self._rows(
            f"SELECT latency_ms FROM traces WHERE {where} AND latency_ms IS NOT NULL", args)]
        by_contract = self.contracts(window)
        all_top = [c["cost_all_top_rung_usd"] for c in by_contract]
        return {
            "window": {"since": window.since, "until": window.until}, **self._figures(total),
            "cost_all_top_rung_usd": round(sum(a for a in all_top if a is not None), 6) if any(
                a is not None for a in all_top) else None,
            "latency_ms": {p: round(percentile(latencies, q), 1) if latencies else None
                           for p, q in (("p50", 50), ("p95", 95), ("p99", 99))},
            "series": self._series(series, window, width, buckets),
            "contracts": by_contract,
        }

    def _series(self, rows: list[dict[str, Any]], window: Window, width: float, buckets: int) -> list[dict[str, Any]]:
        """Every bucket of the window in order, empty ones included (no requests: no shares, no latency)."""
        found = {r["bucket"]: r for r in rows}
        empty = {"requests": 0, "routed": 0, "local": 0, "cost": 0.0, "top_cost": 0.0, "top_answers": 0,
                 "errors": 0, "rejected": 0, "latency_mean": None}
        out = []
        for b in range(int(math.ceil((window.until - window.since) / width))):
            r = found.get(b, empty)
            top = _all_top(r)
            out.append({"t": window.since + b * width, **self._figures(r),
                        "cost_all_top_rung_usd": round(top, 6) if top is not None else None,
                        "latency_mean_ms": r["latency_mean"]})
        return out

    @staticmethod
    def _figures(row: dict[str, Any]) -> dict[str, Any]:
        n, routed = row["requests"] or 0, row["routed"] or 0
        return {"requests": n, "routed": routed,
                "local_share": round((row["local"] or 0) / routed, 4) if routed else None,
                "cost_usd": round(row["cost"] or 0.0, 6),
                "error_rate": round((row["errors"] or 0) / n, 4) if n else None,
                "rejected_rate": round((row["rejected"] or 0) / n, 4) if n else None}

    def contracts(self, window: Window) -> list[dict[str, Any]]:
        """Per contract over `window`: requests, local share, cost and the all-top-rung cost (as `report`)."""
        rows = self._rows(f"SELECT contract, {_SUMS} FROM traces WHERE created_at >= ? AND created_at < ? "
                          "AND contract IS NOT NULL GROUP BY contract ORDER BY requests DESC",
                          (window.since, window.until))
        out = []
        for r in rows:
            r["routed"] = r["requests"]
            top = _all_top(r)
            out.append({"contract": r["contract"], **self._figures(r),
                        "cost_all_top_rung_usd": round(top, 6) if top is not None else None})
        return out

    def contract(self, name: str, window: Window) -> dict[str, Any]:
        """One contract over `window`: its figures, the share answered per rung (and model), the escalation
        reasons."""
        args = (name, window.since, window.until)
        where = "contract = ? AND created_at >= ? AND created_at < ?"
        summary = next((c for c in self.contracts(window) if c["contract"] == name), None)
        rungs = self._rows(f"SELECT rung, backend_model AS model, COUNT(*) AS answers, SUM(answered_local) AS local, "
                           f"AVG(latency_ms) AS latency_mean_ms FROM traces WHERE {where} AND status = 'ok' "
                           "AND rung IS NOT NULL GROUP BY rung, backend_model ORDER BY rung", args)
        n = summary["requests"] if summary else 0
        for r in rungs:
            r["share"] = round(r["answers"] / n, 4) if n else None
        reasons = self._rows(f"SELECT reason, COUNT(*) AS n FROM traces WHERE {where} AND reason IS NOT NULL "
                             "GROUP BY reason ORDER BY n DESC, reason", args)
        return {"contract": name, "summary": summary, "rungs": rungs, "escalations": reasons}

    def traces(self, window: Window, f: TraceFilter) -> list[dict[str, Any]]:
        """Traces in `window` matching `f`, newest first (a page of `f.limit`; the next page: `before` = the last
        row's created_at)."""
        clauses, args = ["created_at >= ?", "created_at < ?"], [window.since, min(window.until, f.before or
                                                                                 window.until)]
        for column, value in (("contract", f.contract), ("status", f.status), ("reason", f.reason)):
            if value:
                clauses.append(f"{column} = ?")
                args.append(value)
        if f.model:
            clauses.append("(backend_model = ? OR model = ?)")
            args += [f.model, f.model]
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
