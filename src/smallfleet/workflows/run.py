"""Running a workflow: each step in order, every hop traced under one run id.

A contract hop goes through the router exactly like a request (rungs, escalation, the guard, budgets);
a model hop is one generation on a fleet model (constrained if the step says so); a tool hop calls a
Python function with its rendered arguments. A hop whose `when` does not hold is skipped (output null).
The first hop that fails ends the run with its error; the hops before it stay traced. Each hop records
where its time went: prompt evaluation (time to first token), decoding, constraint masks, tool time,
and the rest (routing, tracing: the gateway's share).
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from smallfleet.backends.base import ChatMessage, Generation, SamplingParams
from smallfleet.constrain.outcome import settle
from smallfleet.errors import InvalidRequest, SmallfleetError
from smallfleet.route.router import Router, answer_text, no_answer
from smallfleet.trace.record import route_trace
from smallfleet.trace.record import Trace, new_trace_id, record_failure, record_success
from smallfleet.workflows.spec import StepSpec, WorkflowSpec
from smallfleet.workflows.template import as_text, lookup, parsed, render, render_output, render_value

log = logging.getLogger("smallfleet.workflows")
Record = Callable[[Trace], Awaitable[None]]
ENDPOINT = "workflow"


class WorkflowFailed(SmallfleetError):
    status = 502
    type = "backend_error"
    code = "workflow_failed"


@dataclass
class Hop:
    """One step of a run, as it happened."""

    step: str
    kind: str
    status: str  # ok | skipped | error
    output: Any = None
    latency_ms: float = 0.0
    trace_id: str | None = None
    model: str | None = None
    rung: int | None = None
    escalation_reason: str | None = None
    cost: float = 0.0
    prompt_ms: float = 0.0
    decode_ms: float = 0.0
    mask_ms: float = 0.0
    tool_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


@dataclass
class RunResult:
    run_id: str
    workflow: str
    status: str  # ok | error
    output: Any
    hops: list[Hop] = field(default_factory=list)
    latency_ms: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def breakdown_ms(self) -> dict[str, float]:
        """Where the run's time went: prompt evaluation, decoding, constraint masks, tools, and the rest."""
        parts = {k: sum(getattr(h, k) for h in self.hops) for k in ("prompt_ms", "decode_ms", "mask_ms", "tool_ms")}
        parts["other_ms"] = max(0.0, self.latency_ms - sum(parts.values()))
        return {k: round(v, 1) for k, v in parts.items()}


class WorkflowRunner:
    """Runs workflows over a router (its fleet serves the model hops); traces go to `record`."""

    def __init__(self, router: Router, record: Record, store_raw: bool = False) -> None:
        self.router = router
        self._record = record
        self._store_raw = store_raw
        self._tools: dict[str, Callable[..., Any]] = {}

    async def run(self, spec: WorkflowSpec, text: str, tenant: str | None = None) -> RunResult:
        run_id = new_trace_id()
        started = time.perf_counter()
        context: dict[str, Any] = {"input": text}
        result = RunResult(run_id, spec.name, "ok", None)
        for step in spec.steps:
            hop_started = time.perf_counter()
            try:
                if step.when is not None and not _holds(step.when, context):
                    hop = Hop(step.id, step.kind, "skipped")
                else:
                    hop = await self._hop(step, context, run_id, tenant)
            except SmallfleetError as exc:
                hop = Hop(step.id, step.kind, "error", error=exc.message)
            except Exception as exc:  # a bug or an odd value must end the run with its reason, never lose it
                log.exception("workflow %s step %s failed", spec.name, step.id)
                hop = Hop(step.id, step.kind, "error", error=f"{type(exc).__name__}: {exc}")
            hop.latency_ms = round((time.perf_counter() - hop_started) * 1000, 2)
            result.hops.append(hop)
            context[step.id] = hop.output
            if hop.status == "error":
                result.status, result.error = "error", f"step {step.id!r}: {hop.error}"
                break
        if result.status == "ok":
            try:
                result.output = render_output(spec.output, context) if spec.output else context[spec.steps[-1].id]
            except SmallfleetError as exc:
                result.status, result.error = "error", exc.message
        result.latency_ms = round((time.perf_counter() - started) * 1000, 2)
        return result

    async def _hop(self, step: StepSpec, context: dict[str, Any], run_id: str, tenant: str | None) -> Hop:
        if step.kind == "contract":
            return await self._contract(step, render(step.input, context), run_id, tenant)
        if step.kind == "tool":
            return await self._tool(step, render_value(step.args, context), run_id, tenant)
        system = render(step.system, context) if step.system else None
        return await self._model(step, system, render(step.prompt, context), run_id, tenant)

    async def _contract(self, step: StepSpec, text: str, run_id: str, tenant: str | None) -> Hop:
        assert step.contract is not None
        if step.contract not in self.router.contracts:
            raise InvalidRequest(f"no contract {step.contract!r} (contracts: {', '.join(self.router.contracts)})")
        started, created = time.perf_counter(), time.time()
        result = await self.router.run(step.contract, text)
        trace = route_trace(result, text, ENDPOINT, started, created, self._store_raw)
        trace.run_id, trace.step, trace.tenant = run_id, step.id, tenant
        await self._record(trace)
        shown = result.restored()
        hop = Hop(step.id, "contract", "ok", trace_id=trace.id, model=result.model, rung=result.rung,
                  escalation_reason=result.escalation_reason, cost=result.cost)
        if shown.outcome is None or shown.generation is None:
            raise no_answer(step.contract, result)
        _timings(hop, result.attempts, shown.generation)
        served = self.router.contracts[step.contract].spec
        structured = served.output
        json_out = structured.json_schema is not None or structured.tools is not None or served.grounding is not None
        text_out = answer_text(shown.generation, shown.outcome)
        hop.output = parsed(text_out) if json_out else text_out  # a choice "1" stays the string "1"
        return hop

    async def _model(self, step: StepSpec, system: str | None, prompt: str, run_id: str, tenant: str | None) -> Hop:
        assert step.model is not None
        entry = self.router.fleet.resolve(step.model)
        messages = ((ChatMessage("system", system),) if system else ()) + (ChatMessage("user", prompt),)
        constraint = step.output.constraint()
        trace = Trace(id=new_trace_id(), created_at=time.time(), endpoint=ENDPOINT, model=step.model,
                      backend_model=entry.info.id, run_id=run_id, step=step.id, tenant=tenant,
                      messages=[{"role": m.role, "content": m.content} for m in messages])
        started = time.perf_counter()
        try:
            async with entry.admission.slot():
                params = SamplingParams(max_tokens=step.max_tokens, temperature=0.0,
                                        constraint_instructions=step.instructions)
                gen = await entry.backend.generate(messages, params, constraint)
            outcome = settle(constraint, gen.text, gen.finish_reason, gen.tool_calls)
            if not outcome.valid:
                raise WorkflowFailed(f"model {step.model!r} answered outside the step's output: {outcome.problem}")
        except SmallfleetError as exc:
            record_failure(trace, exc, started)
            await self._store(trace)
            raise
        record_success(trace, gen, started)
        trace.cost = entry.info.cost(gen)
        await self._store(trace)
        hop = Hop(step.id, "model", "ok", trace_id=trace.id, model=entry.info.id, cost=trace.cost)
        _timings(hop, [], gen)
        json_out = constraint is not None and constraint.kind in ("json_schema", "json_object", "tools")
        hop.output = parsed(answer_text(gen, outcome)) if json_out else answer_text(gen, outcome)
        return hop

    async def _tool(self, step: StepSpec, args: Any, run_id: str, tenant: str | None) -> Hop:
        assert step.tool is not None
        function = self._function(step.tool)
        trace = Trace(id=new_trace_id(), created_at=time.time(), endpoint=ENDPOINT, model=step.tool, run_id=run_id,
                      step=step.id, tenant=tenant, messages=[{"role": "tool", "content": as_text(args)}])
        started = time.perf_counter()
        try:
            output = function(**args) if isinstance(args, dict) else function(args)
            if inspect.isawaitable(output):  # an async tool
                output = await output
            output = json.loads(as_text(output))  # what later steps read: JSON values (a date becomes its text)
        except Exception as exc:  # a tool's own failure ends the run with its message, never a traceback
            error = WorkflowFailed(f"tool {step.tool} failed: {type(exc).__name__}: {exc}")
            record_failure(trace, error, started)
            await self._store(trace)
            raise error from None
        trace.latency_ms = (time.perf_counter() - started) * 1000
        trace.output = as_text(output)
        await self._store(trace)
        return Hop(step.id, "tool", "ok", output=output, trace_id=trace.id, tool_ms=trace.latency_ms)

    async def _store(self, trace: Trace) -> None:
        guard = self.router.fleet.guard
        if guard.must_scrub():  # as on the API: no raw values at rest under redact / local_only
            await guard.scrub_trace(trace)
        await self._record(trace)

    def _function(self, path: str) -> Callable[..., Any]:
        if path not in self._tools:
            module, _, name = path.partition(":")
            try:
                function = getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError) as exc:
                raise InvalidRequest(f"tool {path!r} cannot be imported: {exc}") from None
            if not callable(function):
                raise InvalidRequest(f"tool {path!r} is not callable")
            self._tools[path] = function
        return self._tools[path]


def _holds(when: dict[str, Any], context: dict[str, Any]) -> bool:
    """Whether every path's value is the expected one (or one of a list); a path through a skipped step (null)
    does not hold."""
    for path, expected in when.items():
        head, *rest = path.split(".")
        if rest and context.get(head) is None and head in context:
            return False
        value = lookup(context, head, rest)
        if isinstance(expected, list) and value not in expected:
            return False
        if not isinstance(expected, list) and value != expected:
            return False
    return True


def _timings(hop: Hop, attempts: list[Any], gen: Generation) -> None:
    """Prompt evaluation, decoding and mask time of the hop's generations (every attempt of a routed hop)."""
    hop.prompt_ms = round(gen.timings.ttft_s * 1000, 2)
    hop.decode_ms = round(max(0.0, gen.timings.total_s - gen.timings.ttft_s) * 1000, 2)
    hop.mask_ms = round(sum(gen.timings.mask_ms), 2)
    hop.prompt_tokens, hop.completion_tokens = gen.prompt_tokens, gen.completion_tokens
    if attempts:
        hop.prompt_tokens = sum(a.prompt_tokens for a in attempts) or hop.prompt_tokens
        hop.completion_tokens = sum(a.completion_tokens for a in attempts) or hop.completion_tokens

