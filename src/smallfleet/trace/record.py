"""The trace record: everything about one request that routing, reports and audits need later."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from smallfleet.backends.base import Generation, LogprobSummary
from smallfleet.errors import SmallfleetError
from smallfleet.jsontext import dumps

if TYPE_CHECKING:
    from smallfleet.route.router import RouteResult

Status = Literal["ok", "error"]


def _storable(text: str) -> str:
    """`text` as valid UTF-8 can hold it: a lone UTF-16 surrogate (which no store can encode) becomes U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


def new_trace_id() -> str:
    """A fresh id: time-ordered hex prefix (ms) plus randomness, so ids sort by creation."""
    return f"{int(time.time() * 1000):012x}{uuid.uuid4().hex[:12]}"


@dataclass
class Trace:
    """One request as it was asked and answered (or failed)."""

    id: str
    created_at: float
    endpoint: str
    model: str
    status: Status = "ok"
    backend_model: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    output: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    logprob_count: int | None = None
    logprob_mean: float | None = None
    logprob_min: float | None = None
    ttft_ms: float | None = None
    generation_ms: float | None = None
    latency_ms: float | None = None
    http_status: int = 200
    error_type: str | None = None
    error_message: str | None = None
    contract: str | None = None
    input: str | None = None
    rung: int | None = None
    escalation_reason: str | None = None
    confidence: float | None = None
    cost: float | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    tenant: str | None = None
    run_id: str | None = None  # the workflow run this hop belongs to
    step: str | None = None  # the workflow step

    _JSON = ("messages", "params", "attempts")

    def to_row(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies, and this runs once per request on the hot path.
        row = {name: getattr(self, name) for name in _COLUMNS}
        for key in self._JSON:
            row[key] = dumps(row[key], ascii_fallback=False)  # (_storable cleans surrogates below)
        for key, value in row.items():  # text the store can encode: a lone surrogate never fails a batch
            if isinstance(value, str):
                row[key] = _storable(value)
        row["stream"] = int(self.stream)
        row.update(self.derived())
        return row

    def derived(self) -> dict[str, Any]:
        """Columns kept beside the record so the dashboard aggregates in SQL what `route.report` computes from
        the attempts (same definitions): answered on a local rung, the remote answers that price the
        all-top-rung baseline (their cost and number), and the first escalation reason."""
        top = [a for a in self.attempts if a.get("status") in ("accepted", "shadow") and a.get("location") == "remote"]
        local = self.status == "ok" and self.rung is not None and any(
            a.get("status") == "accepted" and a.get("location") == "local" and a.get("rung") == self.rung
            for a in self.attempts)
        return {"answered_local": int(local), "top_cost": float(sum(a.get("cost") or 0.0 for a in top)),
                "top_answers": len(top), "reason": self.escalation_reason.split(";")[0]
                if self.escalation_reason else None}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Trace:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in row.items() if k in known}
        for key in cls._JSON:
            values[key] = json.loads(values[key]) if values.get(key) else ({} if key == "params" else [])
        values["stream"] = bool(values.get("stream"))
        return cls(**values)

    @classmethod
    def columns(cls) -> list[str]:
        return [*_COLUMNS, *DERIVED]


_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Trace))
DERIVED = ("answered_local", "top_cost", "top_answers", "reason")  # see `Trace.derived` (migration m008)


def record_success(trace: Trace, gen: Generation, started: float) -> None:
    """Fill `trace` from a finished generation; `started` is the request's perf_counter start."""
    summary = LogprobSummary.of(gen.logprobs)
    trace.status = "ok"
    trace.output = gen.text
    trace.finish_reason = gen.finish_reason
    trace.prompt_tokens = gen.prompt_tokens
    trace.completion_tokens = gen.completion_tokens
    trace.logprob_count, trace.logprob_mean, trace.logprob_min = summary.count, summary.mean, summary.min
    trace.ttft_ms = gen.timings.ttft_s * 1000
    trace.generation_ms = gen.timings.total_s * 1000
    trace.latency_ms = (time.perf_counter() - started) * 1000


def record_failure(trace: Trace, exc: BaseException, started: float) -> None:
    """Mark `trace` failed with `exc` (ours carry status and code; anything else is a bug: 500)."""
    trace.status = "error"
    trace.latency_ms = (time.perf_counter() - started) * 1000
    if isinstance(exc, SmallfleetError):
        trace.http_status, trace.error_type, trace.error_message = exc.status, exc.code or exc.type, exc.message
    else:
        trace.http_status, trace.error_type, trace.error_message = 500, "internal", repr(exc)


def record_route(trace: Trace, result: RouteResult, started: float) -> None:
    """Fill `trace` from a routed request: the answering rung, every attempt, cost and confidence."""
    if result.generation is not None:
        record_success(trace, result.generation, started)
        trace.backend_model = result.model
    trace.contract = result.contract
    trace.rung = result.rung
    trace.escalation_reason = result.escalation_reason
    trace.confidence = result.confidence
    trace.cost = result.cost
    trace.attempts = result.attempts_json()


def route_trace(result: RouteResult, text: str, endpoint: str, started: float, created_at: float,
                store_raw: bool = False, trace_id: str | None = None) -> Trace:
    """The trace of a routed request, in the view the ladder saw (placeholders for `redact` / `local_only`
    contracts) unless the fleet file keeps raw inputs (`guard.store_raw`)."""
    raw = result.grounded_input or text  # a grounded contract's input includes its passages
    shown = raw if result.view is None or store_raw else result.view
    trace = Trace(id=trace_id or new_trace_id(), created_at=created_at, endpoint=endpoint, model=result.contract,
                  messages=[{"role": "user", "content": shown}], input=shown)
    record_route(trace, result, started)
    if result.outcome is None:
        trace.status, trace.http_status, trace.error_type = "error", 502, "no_acceptable_answer"
        trace.error_message = result.escalation_reason
    return trace
