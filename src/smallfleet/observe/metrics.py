"""Prometheus metrics of one gateway (`GET /metrics`), in vLLM's names where they overlap.

Most series come from finished traces (`observe`), the very records `smallfleet report` reads, so the two
agree by construction: the trace writer calls `observe` for each trace it has committed. What a trace
cannot tell (requests running and waiting now, retries, breaker states, the specialist version each
contract serves) is set live by the gateway's parts (`queue`, `retry`, `breaker`, `serving`) or read when
`/metrics` is scraped (`scrape_hook`).

Names follow vLLM (`vllm:request_success_total` ... become `smallfleet:request_success_total` ...,
label `model_name`), so existing Grafana boards fit; what is ours (route decisions, escalations, cost
and the all-top-rung cost it replaced, constraint refusals, queue rejections, backend failures and
retries, breakers, specialist versions, cache hits, guard redactions) is under the same prefix. Labels
are bounded: model ids, contract names, rung numbers, fixed reason and status sets, never a trace id or
user text. An escalation reason is its first part, the part before any ":" detail.

With several worker processes (`serve --workers N`) the gateway sets `PROMETHEUS_MULTIPROC_DIR` before
the workers start; each worker then writes its values to that directory and a scrape, served by any
worker, adds them up (`prometheus_client.multiprocess`). Live gauges use the `livesum` / `livemax`
modes so a dead worker's values drop out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from smallfleet.trace.record import Trace

PREFIX = "smallfleet:"
# vLLM's buckets, with the gateway's own sub-second range in front (a cached or classifier answer takes ms).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0,
                   30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
                40.0, 80.0, 160.0, 640.0, 2560.0)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_dead_workers(folder: str) -> None:
    """A worker that died without a clean exit (killed, crashed) leaves live gauges behind: drop them."""
    from prometheus_client import multiprocess

    for path in Path(folder).glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), folder)


def multiprocess_dir() -> str | None:
    """The shared directory of a multi-process gateway (None in a single process)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


_ENDPOINTS = ("/v1/chat/completions", "/v1/responses")
_TEMPLATES = ((re.compile(r"^/v1/smallfleet/traces/[^/]+/label$"), "/v1/smallfleet/traces/{id}/label"),
              (re.compile(r"^/v1/smallfleet/workflows/[^/]+/runs$"), "/v1/smallfleet/workflows/{name}/runs"),
              (re.compile(r"^/v1/responses/[^/]+$"), "/v1/responses/{id}"))
_FINISH = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})


def endpoint_label(endpoint: str | None) -> str:
    """A bounded endpoint label: our own endpoint names, paths as their route templates, anything else 'other'."""
    value = endpoint or ""
    if value in _ENDPOINTS or (value and not value.startswith("/") and len(value) <= 40):
        return value  # the API's endpoints, or the names the gateway's own runs give (demo:serve, workflow)
    return next((template for pattern, template in _TEMPLATES if pattern.match(value)), "other")


def finish_label(reason: str | None) -> str:
    return reason if reason in _FINISH else "other"


def reason_label(reason: str | None) -> str:
    """The bounded part of an escalation reason: its first reason, without the detail after ':'."""
    first = (reason or "").split(";")[0].strip()
    return first.split(":")[0] if first else ""


class Metrics:
    """Every series of one gateway, registered in its own registry (no process-wide state: two gateways in
    one process, as in tests, keep separate counts)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._scrape_hooks: list[Callable[[], None]] = []
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}  # bounded: every label value is bounded
        r = self.registry

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
            return Counter(PREFIX + name, doc, labels, registry=r)

        model = ("model_name",)
        # vLLM's names
        self.success = counter("request_success", "Requests answered, by the model that answered and why it stopped",
                               ("model_name", "finished_reason"))
        self.e2e = Histogram(PREFIX + "e2e_request_latency_seconds", "Request latency at the gateway, end to end",
                             model, buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram(PREFIX + "time_to_first_token_seconds", "Time to the first token", model,
                              buckets=TTFT_BUCKETS, registry=r)
        self.prompt_tokens = counter("prompt_tokens", "Prompt tokens processed, per model (every ladder attempt)",
                                     model)
        self.generation_tokens = counter("generation_tokens", "Tokens generated, per model (every ladder attempt)",
                                         model)
        self.running = Gauge(PREFIX + "num_requests_running", "Generations running now", model,
                             multiprocess_mode="livesum", registry=r)
        self.waiting = Gauge(PREFIX + "num_requests_waiting", "Requests waiting for a generation slot", model,
                             multiprocess_mode="livesum", registry=r)
        # ours
        self.requests = counter("requests", "Requests by endpoint and HTTP status, answered or not",
                                ("endpoint", "code"))
        self.decisions = counter("route_decisions", "Routed requests by contract and the rung that answered "
                                 "(rung -1: none did)", ("contract", "rung", "model_name"))
        self.escalations = counter("escalations", "Routed requests that left their first rung, by first reason",
                                   ("contract", "reason"))
        self.attempts = counter("route_attempts", "Ladder attempts by contract, rung, model and status",
                                ("contract", "rung", "model_name", "status"))
        self.cost = counter("cost_usd", "Spend on remote rungs in USD (shadow calls included)",
                            ("contract", "model_name"))
        self.top_cost = counter("top_rung_answer_cost_usd", "Cost of the remote answers (accepted or shadow) that "
                                "price the all-top-rung baseline", ("contract",))
        self.top_answers = counter("top_rung_answers", "Number of those remote answers", ("contract",))
        self.priced_cost = counter("remote_priced_cost_usd", "Cost of every priced remote attempt (any status): "
                                   "prices the all-top-rung baseline when no remote answer does", ("contract",))
        self.priced = counter("remote_priced_attempts", "Number of those remote attempts", ("contract",))
        self.routed = counter("routed_requests", "Requests to each contract, answered or not (the all-top-rung "
                              "cost is top_rung_answer_cost_usd / top_rung_answers * routed_requests, or with "
                              "remote_priced_* when there are no top-rung answers, as `smallfleet report`)",
                              ("contract",))
        self.local = counter("local_answers", "Routed requests answered and accepted on a local rung", ("contract",))
        self.refusals = counter("constraint_refusals", "Answers refused by the output constraint or a validator",
                                ("contract", "model_name"))
        self.rejected = counter("queue_rejections", "Requests turned away with 429 (queue full, wait too long, "
                                "tenant quota)", ("endpoint",))
        self.failures = counter("backend_failures", "Backend calls that failed, by model and error code",
                                ("model_name", "code"))
        self.retries = counter("backend_retries", "Backend calls retried after a transient failure", model)
        self.breaker_state = Gauge(PREFIX + "circuit_breaker_state", "Circuit breaker per model: 0 closed, "
                                   "1 half-open, 2 open", model, multiprocess_mode="livemax", registry=r)
        self.specialist = Gauge(PREFIX + "specialist_version", "1 for the specialist version a contract serves "
                                "('declared': none promoted)", ("contract", "version"),
                                multiprocess_mode="livemax", registry=r)
        self.cache_hits = counter("cache_hits", "Answers served from the answer cache", ("contract", "kind"))
        self.redactions = counter("guard_redactions", "Sensitive values replaced by placeholders before a "
                                  "remote call, by category", ("category",))
        self._serving: dict[str, str] = {}

    # --- from finished traces ---------------------------------------------------------------------------
    def _of(self, metric: Any, *values: str) -> Any:  # noqa: ANN401 - a prometheus metric and its child
        """`metric.labels(*values)`, remembered (prometheus-client's lookup is a measurable cost per request)."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def observe(self, trace: Trace) -> None:
        """Count one committed trace (called by the trace writer after the commit). Labels come from what the
        gateway resolved (the model that answered, a contract it serves), never from what the caller typed:
        a request for an unknown model is counted under `model_name=""`."""
        endpoint = endpoint_label(trace.endpoint)
        self._of(self.requests, endpoint, str(trace.http_status)).inc()
        if trace.http_status == 429:
            self._of(self.rejected, endpoint).inc()
        answered_by = trace.backend_model or ""
        if trace.status == "ok" and answered_by:
            self._of(self.success, answered_by, finish_label(trace.finish_reason)).inc()
        if trace.latency_ms is not None:
            self._of(self.e2e, answered_by).observe(trace.latency_ms / 1000)
        if trace.ttft_ms is not None and answered_by:
            self._of(self.ttft, answered_by).observe(trace.ttft_ms / 1000)
        if trace.contract is None:
            if answered_by:
                self._tokens(answered_by, trace.prompt_tokens, trace.completion_tokens)
            if trace.status == "error" and trace.http_status >= 500 and trace.error_type:
                self._of(self.failures, answered_by, trace.error_type).inc()
            return
        self._routed(trace)

    def _tokens(self, model: str, prompt: int | None, generated: int | None) -> None:
        if prompt:
            self._of(self.prompt_tokens, model).inc(prompt)
        if generated:
            self._of(self.generation_tokens, model).inc(generated)

    def _routed(self, trace: Trace) -> None:
        contract = trace.contract or ""
        self._of(self.routed, contract).inc()
        self._of(self.decisions, contract, str(trace.rung if trace.rung is not None else -1),
                              trace.backend_model or "").inc()
        reason = reason_label(trace.escalation_reason)
        if reason:
            self._of(self.escalations, contract, reason).inc()
        local = False
        for a in trace.attempts:
            model, status = str(a.get("model") or ""), str(a.get("status") or "")
            self._of(self.attempts, contract, str(a.get("rung")), model, status).inc()
            self._tokens(model, a.get("prompt_tokens"), a.get("completion_tokens"))
            cost = float(a.get("cost") or 0.0)
            if cost:
                self._of(self.cost, contract, model).inc(cost)
            if a.get("location") == "remote" and cost:
                self._of(self.priced_cost, contract).inc(cost)
                self._of(self.priced, contract).inc()
            if status in ("accepted", "shadow") and a.get("location") == "remote":  # as `route.report` counts
                self._of(self.top_cost, contract).inc(cost)
                self._of(self.top_answers, contract).inc()
            if status == "accepted" and a.get("location") == "local" and a.get("rung") == trace.rung:
                local = True
            if status == "cached":
                self._of(self.cache_hits, contract, str(a.get("reason") or "exact")).inc()
            detail = str(a.get("reason") or "")
            if status == "rejected" and detail == "invalid_output":
                self._of(self.refusals, contract, model).inc()
            if status == "failed" and detail.startswith("backend_error"):
                self._of(self.failures, model, detail.split(":", 1)[-1].strip() or "backend_error").inc()
        if local and trace.status == "ok":
            self._of(self.local, contract).inc()

    # --- live --------------------------------------------------------------------------------------------
    def queue(self, model: str, running: int, waiting: int) -> None:
        """A model's admission changed (`Admission.on_change`)."""
        self._of(self.running, model).set(running)
        self._of(self.waiting, model).set(waiting)

    def retry(self, model: str) -> None:
        self._of(self.retries, model).inc()

    def breaker(self, model: str, state: str) -> None:
        self._of(self.breaker_state, model).set(BREAKER_STATES.get(state, 0))

    def redaction(self, category: str, n: int = 1) -> None:
        self._of(self.redactions, category).inc(n)

    def serving(self, contract: str, version: str) -> None:
        """The specialist version `contract` serves now (a promotion or rollback swapped it)."""
        old = self._serving.get(contract)
        if old == version:
            return
        if old is not None:
            self._of(self.specialist, contract, old).set(0)
        self._of(self.specialist, contract, version).set(1)
        self._serving[contract] = version

    def scrape_hook(self, hook: Callable[[], None]) -> None:
        """Run `hook` before each scrape (values that change with time alone, like a breaker going half-open)."""
        self._scrape_hooks.append(hook)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type (all workers' values in multi-process mode)."""
        for hook in self._scrape_hooks:
            hook()
        folder = multiprocess_dir()
        if folder is not None:
            from prometheus_client import multiprocess

            _forget_dead_workers(folder)
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def snapshot(metrics: Metrics) -> dict[str, Any]:
    """name{labels} -> value of every sample of `metrics` (tests read the numbers without parsing)."""
    return samples(metrics.render()[0].decode())


def samples(text: str) -> dict[str, Any]:
    """name{k=v,...} -> value of every sample in an exposition text (labels sorted, unquoted)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out
