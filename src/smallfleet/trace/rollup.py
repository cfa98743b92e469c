"""Hourly rollups of the traces, kept beside them so the dashboard reads any window in time proportional
to its hours, not its traces (a 30-day overview reads 720 rows per contract, however many traces there are;
per-minute rows were measured first and were too many: 9.8 s for 30 days of a million traces).

One row per (hour, contract) ('' for plain model requests) sums what `route.report` sums, with its
definitions (`Trace.derived`): requests, routed requests, local answers, cost, the remote answers that
price the all-top-rung baseline, errors, 429s; a latency histogram on fixed log-spaced buckets (each
1.25x the last: percentiles read from it are within 12.5%); answers per (rung, model) with their
latency; and escalations per first reason. The store updates the rows of a batch in the batch's own
transaction, and a purge drops the rows of the hours it purged (and recounts the hour it cut through).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from smallfleet.trace.record import Trace

PERIOD_S = 3600  # one row per hour and contract
BASE_MS = 0.1  # the first bucket's upper edge
GROWTH = 1.25
BUCKETS = 96  # up to ~0.1 ms * 1.25^95, about 17 hours


def bucket_of(latency_ms: float) -> int:
    if latency_ms <= BASE_MS:
        return 0
    return min(BUCKETS - 1, int(math.ceil(math.log(latency_ms / BASE_MS, GROWTH))))


def upper_edge(bucket: int) -> float:
    return BASE_MS * GROWTH**bucket


@dataclass
class Rollup:
    """The sums of one (hour, contract)."""

    requests: int = 0
    routed: int = 0
    local: int = 0
    cost: float = 0.0
    top_cost: float = 0.0
    top_answers: int = 0
    priced_cost: float = 0.0  # every priced remote attempt: the baseline's price when no remote answer gives one
    priced_n: int = 0
    errors: int = 0
    rejected: int = 0
    latency_n: int = 0
    latency_sum: float = 0.0
    hist: dict[int, int] = field(default_factory=dict)  # bucket -> traces
    rungs: dict[str, list[float]] = field(default_factory=dict)  # "rung|model" -> [answers, latency sum]
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, trace: Trace) -> None:
        derived = trace.derived()
        self.requests += 1
        self.routed += trace.contract is not None
        self.local += derived["answered_local"]
        self.cost += trace.cost or 0.0
        self.top_cost += derived["top_cost"]
        self.top_answers += derived["top_answers"]
        for a in trace.attempts:
            if a.get("location") == "remote" and a.get("cost"):
                self.priced_cost += a["cost"]
                self.priced_n += 1
        self.errors += trace.status != "ok"
        self.rejected += trace.http_status == 429
        if trace.latency_ms is not None:
            self.latency_n += 1
            self.latency_sum += trace.latency_ms
            b = bucket_of(trace.latency_ms)
            self.hist[b] = self.hist.get(b, 0) + 1
        if trace.contract is not None and trace.status == "ok" and trace.rung is not None:
            cell = self.rungs.setdefault(f"{trace.rung}|{trace.backend_model or ''}", [0, 0.0])
            cell[0] += 1
            cell[1] += trace.latency_ms or 0.0
        if derived["reason"]:
            self.reasons[derived["reason"]] = self.reasons.get(derived["reason"], 0) + 1

    def merge(self, other: Rollup) -> None:
        for name in ("requests", "routed", "local", "cost", "top_cost", "top_answers", "priced_cost", "priced_n",
                     "errors", "rejected", "latency_n", "latency_sum"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for b, n in other.hist.items():
            self.hist[b] = self.hist.get(b, 0) + n
        for key, (n, total) in other.rungs.items():
            cell = self.rungs.setdefault(key, [0, 0.0])
            cell[0] += n
            cell[1] += total
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n

    def to_row(self, hour: int, contract: str) -> tuple[Any, ...]:
        return (hour, contract, self.requests, self.routed, self.local, self.cost, self.top_cost, self.top_answers,
                self.priced_cost, self.priced_n, self.errors, self.rejected, self.latency_n, self.latency_sum,
                json.dumps(self.hist),
                json.dumps(self.rungs), json.dumps(self.reasons))

    @classmethod
    def from_row(cls, row: Any) -> Rollup:  # noqa: ANN401 - a sqlite3.Row or tuple in COLUMNS order
        values = tuple(row)
        return cls(*values[2:14], hist={int(k): v for k, v in json.loads(values[14]).items()},
                   rungs=json.loads(values[15]), reasons=json.loads(values[16]))

    def percentile(self, q: float) -> float | None:
        """The latency (ms) under which `q` percent of the traces fall, to the bucket's upper edge."""
        if not self.latency_n:
            return None
        target, seen = q / 100 * self.latency_n, 0
        for b in sorted(self.hist):
            seen += self.hist[b]
            if seen >= target:
                return round(upper_edge(b), 1)
        return round(upper_edge(max(self.hist)), 1)


COLUMNS = ("hour", "contract", "requests", "routed", "local", "cost", "top_cost", "top_answers", "priced_cost",
           "priced_n", "errors", "rejected", "latency_n", "latency_sum", "hist", "rungs", "reasons")


def rollups(traces: Iterable[Trace]) -> dict[tuple[int, str], Rollup]:
    """The rollups of `traces`, by (hour, contract)."""
    out: dict[tuple[int, str], Rollup] = {}
    for trace in traces:
        key = (int(trace.created_at // PERIOD_S), trace.contract or "")
        out.setdefault(key, Rollup()).add(trace)
    return out
