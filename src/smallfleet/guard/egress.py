"""The one choke point between smallfleet and any remote model.

Every remote backend in a `Fleet` is wrapped in a `GuardedRemote` when the fleet is built (there is no
other way to obtain one), so routed attempts, shadow runs, agreement samples, live quality checks,
plain model requests and anything added later pass through `GuardedRemote.stream`. It applies the
policy in force for the call:

- `local_only`: nothing is sent; `EgressRefused` (HTTP 403, OpenAI-shaped) says why;
- `redact`: every sensitive value in the messages (and earlier tool-call arguments) is replaced by a
  typed placeholder before the call, and the answer (text, JSON, tool-call arguments, streamed
  chunks) comes back restored. When the router already redacted the request (`EgressScope.redaction`),
  the same table is used and nothing is restored here: the router restores the final answer itself,
  so its traces keep the redacted view;
- `allow`: sent as is.

Every call that leaves is written to the hash-chained audit (`guard.audit`) with the categories and
counts replaced and the SHA-256 of the payload as sent. Every call to a priced model first reserves its
most expensive outcome against the budgets of its contract and tenant (`guard.budget`, `Guard.meter`) and
settles what it cost after: a call no budget allows is refused (`BudgetExhausted`, 429) before it leaves.

The policy in force comes from `egress_scope` (a context variable the router and the API set from the
fleet file and the caller's key: never from message content), and is the strictest of the scopes
entered; with no scope, the fleet's default (`guard.egress`) applies.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from smallfleet.backends.base import Backend, ChatMessage, Delta, Generation, SamplingParams
from smallfleet.errors import SmallfleetError
from smallfleet.guard.audit import AuditLog, payload_digest
from smallfleet.guard.budget import Hold, LedgerUnavailable, Meter, hold_tokens
from smallfleet.guard.redact import Redaction, Redactor, StreamRestorer

log = logging.getLogger("smallfleet.guard")

if TYPE_CHECKING:
    from smallfleet.constrain.spec import Constraint
    from smallfleet.guard.detect import Detector
    from smallfleet.trace.record import Trace

Policy = Literal["local_only", "redact", "allow"]
STRICTNESS: dict[str, int] = {"allow": 0, "redact": 1, "local_only": 2}


class EgressRefused(SmallfleetError):
    """The policy in force forbids sending this request to a remote model."""

    status = 403
    type = "permission_error"
    code = "egress_refused"


@dataclass(frozen=True)
class EgressScope:
    policy: Policy
    tenant: str | None = None
    contract: str | None = None
    redaction: Redaction | None = None  # the router's table, when it redacted the request itself
    sent: list[Redaction] | None = None  # where each call's own table goes (the API scrubs the trace with it)


_SCOPE: contextvars.ContextVar[EgressScope | None] = contextvars.ContextVar("smallfleet_egress", default=None)


def stricter(a: Policy, b: Policy) -> Policy:
    return a if STRICTNESS[a] >= STRICTNESS[b] else b


def current_scope() -> EgressScope | None:
    return _SCOPE.get()


@contextmanager
def egress_scope(policy: Policy, *, tenant: str | None = None, contract: str | None = None,
                 redaction: Redaction | None = None, sent: list[Redaction] | None = None) -> Iterator[EgressScope]:
    """Enter a policy for the calls made inside; an outer, stricter policy is never loosened."""
    if policy not in STRICTNESS:
        raise ValueError(f"unknown egress policy {policy!r}")
    outer = _SCOPE.get()
    scope = EgressScope(policy, tenant, contract, redaction, sent)
    if outer is not None:
        scope = EgressScope(stricter(outer.policy, policy), tenant or outer.tenant, contract or outer.contract,
                            redaction or outer.redaction, sent if sent is not None else outer.sent)
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


@dataclass(frozen=True)
class GuardSettings:
    default_policy: Policy = "allow"
    store_raw: bool = False  # keep raw inputs in traces of redact / local_only traffic (off unless the fleet says)


class Guard:
    """What every `GuardedRemote` shares: the settings, the detector (loaded on first need) and the audit."""

    def __init__(self, settings: GuardSettings, audit_path: Path | None, detector_factory: type[Detector] | None = None,
                 detector_options: dict | None = None) -> None:
        self.settings = settings
        self.audit = AuditLog(audit_path)
        self.on_egress: Callable[[dict[str, int]], None] | None = None  # categories replaced in a call (metrics)
        self.meter: Meter | None = None  # the budget ledger, set once the trace store is open
        self._factory, self._options = detector_factory, detector_options or {}
        self._redactor: Redactor | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smallfleet-guard")

    @property
    def redactor(self) -> Redactor:
        if self._redactor is None:
            if self._factory is None:
                from smallfleet.guard.detect import Detector

                self._factory = Detector
            self._redactor = Redactor(self._factory(**self._options))
        return self._redactor

    async def redact(self, messages: tuple[ChatMessage, ...], redaction: Redaction) -> tuple[ChatMessage, ...]:
        """Redact off the event loop: detection is CPU work (tens of ms); one worker thread, since spaCy's
        string store is not safe to grow from several threads at once."""
        loop = asyncio.get_running_loop()
        out, _ = await loop.run_in_executor(self._executor, self.redactor.redact, messages, redaction)
        return out

    def must_scrub(self) -> bool:
        """Whether what is stored about the current request (traces) must hold placeholders, not raw values."""
        return self.scope().policy != "allow" and not self.settings.store_raw

    async def scrub(self, messages: list[dict], *texts: str | None,
                    known: Redaction | None = None) -> tuple[list[dict], list[str | None]]:
        """Stored messages (OpenAI dicts) and other stored texts (output, error message) with sensitive values
        replaced, one placeholder table for all of them. `known`: the table the request was sent out with;
        its values are replaced wherever they appear (an answer quoting one in a new context too), with the
        same placeholders the remote model saw, before detection looks for more."""
        redaction = copy.deepcopy(known) if known is not None else Redaction()
        internal = tuple(ChatMessage("user", m.get("content") if isinstance(m.get("content"), str) else
                                     json.dumps(m.get("content"), ensure_ascii=False)) for m in messages)
        internal += tuple(ChatMessage("assistant", t or "") for t in texts)
        internal = tuple(replace(m, content=redaction.mask_known(m.content)) for m in internal)
        clean = await self.redact(internal, redaction)
        scrubbed = [{**m, "content": c.content} for m, c in zip(messages, clean, strict=False)]
        for m in scrubbed:
            if m.get("tool_calls"):
                m["tool_calls"] = "[withheld: egress policy]"
        rest = clean[len(messages):]
        return scrubbed, [c.content if t is not None else None for c, t in zip(rest, texts, strict=True)]

    async def scrub_trace(self, trace: Trace, known: Redaction | None = None) -> None:
        """Replace sensitive values in what a trace stores (messages, output, error message), in place."""
        trace.messages, (trace.output, trace.error_message) = await self.scrub(
            trace.messages, trace.output, trace.error_message, known=known)

    def scope(self) -> EgressScope:
        """The policy in force: the entered scopes', never looser than the fleet's default."""
        scope = _SCOPE.get() or EgressScope(self.settings.default_policy)
        return replace(scope, policy=stricter(scope.policy, self.settings.default_policy))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.audit.close()


def _payload(model: str, messages: tuple[ChatMessage, ...]) -> dict:
    """What left, as `dataclasses.asdict` would give it (the digest is unchanged), without its deep copies."""
    return {"model": model, "messages": [
        {"role": m.role, "content": m.content,
         "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in m.tool_calls],
         "tool_call_id": m.tool_call_id} for m in messages]}


class GuardedRemote(Backend):
    """A remote backend behind the guard. The wrapped backend is never handed out."""

    def __init__(self, inner: Backend, guard: Guard) -> None:
        if inner.info.location != "remote":
            raise ValueError(f"{inner.info.id} is local: only remote backends are guarded")
        self.info = inner.info
        self._inner = inner
        self._guard = guard

    def __getattr__(self, name: str) -> object:  # read-only facts of the inner backend (structured_outputs ...)
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    async def _prepare(self, messages: tuple[ChatMessage, ...]) -> tuple[tuple[ChatMessage, ...], Redaction | None]:
        """What may leave (or `EgressRefused`), audited; and the redaction to restore the answer with, if ours."""
        scope = self._guard.scope()
        if scope.policy == "local_only":
            raise EgressRefused(f"the egress policy for {scope.contract or 'this request'} is local_only: "
                                f"nothing is sent to the remote model {self.info.id!r}")
        redaction, restore, counts = None, False, {}
        if scope.policy == "redact":
            # The router's table when it redacted the request itself (then it restores the answer), else a new one.
            redaction = scope.redaction if scope.redaction is not None else Redaction()
            restore = scope.redaction is None
            messages = await self._guard.redact(messages, redaction)
            counts = dict(redaction.counts)
            if scope.sent is not None:
                scope.sent.append(redaction)
        # Group commit: this call waits for its row to be on disk (never leaves unaudited), the event loop does not.
        await self._guard.audit.record(
            tenant=scope.tenant, contract=scope.contract, model=self.info.id, policy=scope.policy, categories=counts,
            payload_sha256=payload_digest(_payload(self.info.id, messages)))
        if self._guard.on_egress is not None and counts:
            try:
                self._guard.on_egress(counts)
            except Exception:  # noqa: BLE001 - a metrics failure never stops a call
                log.exception("egress observer failed")
        return messages, redaction if restore else None

    async def _reserve(self, sent: tuple[ChatMessage, ...], params: SamplingParams,
                       constraint: Constraint | None) -> tuple[Hold | None, tuple[int, int]]:
        """Hold this call's most expensive outcome on its budgets: (hold, its bound in tokens). `BudgetExhausted`
        when a budget cannot pay for it; `LedgerUnavailable` when the ledger cannot be reached (fail closed). A
        reservation still running when this task is cancelled is given back as soon as it lands."""
        meter = self._guard.meter
        if meter is None or not (self.info.price_per_1k_input or self.info.price_per_1k_output):
            return None, (0, 0)
        scope = self._guard.scope()
        bound = hold_tokens(self.info, sent, params, constraint)
        job = asyncio.get_running_loop().run_in_executor(None, meter.reserve, scope.contract, scope.tenant,
                                                         self.info.cost_of(*bound))
        try:
            return await asyncio.shield(job), bound
        except asyncio.CancelledError:
            job.add_done_callback(lambda done: _give_back(meter, done))
            raise
        except SmallfleetError:
            raise
        except Exception as exc:  # noqa: BLE001 - a database error: refuse the priced call, keep serving the rest
            log.exception("budget ledger unavailable")
            raise LedgerUnavailable(f"the budget ledger cannot be reached ({type(exc).__name__}): calls to priced "
                                    f"models such as {self.info.id!r} are refused until it is back") from exc

    def _billed(self, final: Generation | None, bound: tuple[int, int], seen: int,
                error: SmallfleetError | None) -> float:
        """What to charge for a call (never less than the upstream may bill): the upstream's usage (its prompt
        bound and the bytes of its answer where it reported none); nothing for an error that proves nothing
        was processed; the whole bound for any other error or an end with nothing received; and for a stream
        cut short after text arrived (the client left), the prompt's bound and the bytes received plus 64."""
        prompt, most = bound
        if final is not None:
            answer = len(final.text.encode()) + sum(len(c.arguments.encode()) + len(c.name) for c in final.tool_calls)
            return self.info.cost_of(final.prompt_tokens or prompt, final.completion_tokens or min(most, answer + 64))
        if error is not None:
            return 0.0 if error.unbilled else self.info.cost_of(prompt, most)
        return self.info.cost_of(prompt, min(most, seen + 64) if seen else most)

    async def _settle(self, hold: Hold | None, usd: float) -> None:
        """Replace the hold by `usd`; the ledger update finishes even if this task is being cancelled."""
        meter = self._guard.meter
        if hold is None or meter is None:
            return
        done = asyncio.get_running_loop().run_in_executor(None, meter.settle, hold, usd)
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the hold stays charged (never under-counted); the answer is not lost
            log.exception("settling a budget hold failed; the call stays charged its upper bound")

    async def stream(self, messages: tuple[ChatMessage, ...], params: SamplingParams,
                     constraint: Constraint | None = None) -> AsyncIterator[Delta | Generation]:
        sent, redaction = await self._prepare(tuple(messages))
        hold, bound = await self._reserve(sent, params, constraint)
        json_text = _json_answer(constraint)
        restorer = StreamRestorer(redaction, json_text) if redaction is not None else None
        final: Generation | None = None
        error: SmallfleetError | None = None
        seen = 0  # bytes of text received
        try:
            async for event in self._inner.stream(sent, params, constraint):
                if isinstance(event, Generation):
                    final = event
                else:
                    seen += len(event.text.encode())
                if restorer is None or redaction is None:
                    yield event
                elif isinstance(event, Delta):
                    text = restorer.feed(event.text)
                    if text or event.logprobs:
                        yield replace(event, text=text)
                else:
                    tail = restorer.flush()
                    if tail:
                        yield Delta(tail)
                    yield redaction.restore_generation(event, json_text)
        except SmallfleetError as exc:
            error = exc
            raise
        finally:
            await self._settle(hold, self._billed(final, bound, seen, error))

    async def generate(self, messages: tuple[ChatMessage, ...], params: SamplingParams,
                       constraint: Constraint | None = None) -> Generation:
        sent, redaction = await self._prepare(tuple(messages))
        hold, bound = await self._reserve(sent, params, constraint)
        gen: Generation | None = None
        error: SmallfleetError | None = None
        try:
            gen = await self._inner.generate(sent, params, constraint)
        except SmallfleetError as exc:
            error = exc
            raise
        finally:  # cancelled (a timeout) while the upstream works: it may bill, so the whole bound stays charged
            await self._settle(hold, self._billed(gen, bound, 0, error))
        return redaction.restore_generation(gen, _json_answer(constraint)) if redaction is not None else gen

    async def aclose(self) -> None:
        await self._inner.aclose()


def _give_back(meter: Meter, reserved: asyncio.Future[Hold | None]) -> None:
    """A reservation that landed after its call was abandoned: refund it whole, off the event loop."""
    if reserved.cancelled() or reserved.exception() is not None or reserved.result() is None:
        return
    hold = reserved.result()
    threading.Thread(target=_quietly, args=(meter.settle, hold, 0.0), name="budget-refund", daemon=True).start()


def _quietly(fn: Callable[..., object], *args: object) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - the hold stays charged: never under-counted
        log.exception("refunding an abandoned budget hold failed")


def _json_answer(constraint: Constraint | None) -> bool:
    from smallfleet.constrain.spec import JsonSchemaConstraint

    return isinstance(constraint, JsonSchemaConstraint)
