"""The router: answer a contract's request with the smallest rung of its ladder that is good enough.

For each rung, smallest first: skip it if policy forbids (egress, budget, open circuit, latency
budget), call it with timeout and retries on transient errors, check the answer (constraint,
validators) and its signals against the rung's accept rule. Accept, or escalate with a reason.
A failing backend falls through to the next rung. The top rung's valid answer is accepted as is.
If no rung may run any more, the best valid answer so far is returned, marked as such.
Before the walk, an optional predictor may skip the first rung for inputs it will likely fail.
`shadow=True` also runs the rungs above the chosen one (for calibration data), without changing
the answer.
"""

from __future__ import annotations

import asyncio
import logging
import importlib
import math
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

from smallfleet.backends.base import ChatMessage, Generation, SamplingParams
from smallfleet.cache.store import AnswerCache
from smallfleet.constrain.compile import grammar_for
from smallfleet.constrain.outcome import Outcome, canonical, settle
from smallfleet.constrain.spec import Constraint, JsonSchemaConstraint
from smallfleet.contracts.spec import AcceptRule, ContractSpec, Rung
from smallfleet.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ConfigError,
    ContextLengthExceeded,
    KnowledgeBaseUnavailable,
    Overloaded,
    SmallfleetError,
)
from smallfleet.fleet import Fleet, FleetEntry
from smallfleet.guard.budget import BudgetExhausted
from smallfleet.guard.egress import Policy, egress_scope, stricter
from smallfleet.guard.redact import Redaction
from smallfleet.kb import grounded
from smallfleet.kb.library import Library
from smallfleet.kb.retrieve import Retrieval
from smallfleet.route.caching import AnswerCacheUse, CacheLookup
from smallfleet.route.breaker import CircuitBreaker
from smallfleet.route.signals import Signals, rejection, signals_of

Validator = Callable[[str], "str | None"]
TRANSIENT = (BackendUnavailable, BackendTimeout, Overloaded)


class RouteObserver(Protocol):
    """What the router reports as it happens (`observe.metrics.Metrics` is one)."""

    def retry(self, model: str) -> None: ...

    def breaker(self, model: str, state: str) -> None: ...


class Predictor(Protocol):
    """Estimates, before generation, the chance that the first rung answers acceptably."""

    def success_probability(self, text: str) -> float: ...


@dataclass
class Contract:
    """A contract ready to run: its spec, compiled constraint, validators and current accept rules."""

    spec: ContractSpec
    constraint: Constraint | None
    validators: list[tuple[str, Validator]]
    rules: list[AcceptRule]
    predictor: Predictor | None = None
    skip_below: float = 0.0  # predicted success probability under which the first rung is skipped
    retrieval: float | None = None  # grounded contracts, per request: the best passage's cosine similarity
    version: str = "declared"  # what is served (spec, specialist, rules): cached answers key on it

    def for_text(self, text: str) -> Contract:
        """The contract for one input: a grounded contract's answer schema admits exactly the passage ids
        quoted in `text` (see `kb.grounded`); any other contract is returned as it is."""
        grounding = self.spec.grounding
        if grounding is None:
            return self
        if grounding.answer == "quoted":
            schema = grounded.quoted_schema(text, grounding.answer_chars)
        else:
            schema = grounded.answer_schema(grounded.passage_ids(text), grounding.max_citations,
                                            grounding.answer_chars)
        return replace(self, constraint=JsonSchemaConstraint(schema=schema))

    @classmethod
    def load(cls, spec: ContractSpec, thresholds: Mapping[str, AcceptRule] | None = None) -> Contract:
        """`thresholds` are calibrated rules by model id; a rung's model without one keeps its declared rule."""
        constraint = spec.output.constraint()
        if constraint is not None:
            grammar_for(constraint, f"contract {spec.name!r} output")
        validators = [(path, _import_validator(spec.name, path)) for path in spec.validators]
        rules = [_with_grounding(rung.accept, (thresholds or {}).get(rung.model, rung.accept)) for rung in spec.ladder]
        return cls(spec, constraint, validators, rules)

    def messages(self, text: str, rung: Rung | None = None) -> tuple[ChatMessage, ...]:
        """The prompt sent to `rung` (default: the contract's full prompt). A rung with `prompt: input` or `bare`
        (a fine-tuned specialist) gets the input alone; with `input` its backend adds the constraint's
        instructions, with `bare` it does not (see `SamplingParams.constraint_instructions`)."""
        if rung is not None and rung.prompt in ("input", "bare"):
            return (ChatMessage("user", text),)
        msgs: list[ChatMessage] = []
        instructions = self.spec.instructions or grounded.instructions_for(self.spec.grounding)
        if instructions:
            msgs.append(ChatMessage("system", instructions))
        for ex in self.spec.examples:
            msgs += [ChatMessage("user", ex.input), ChatMessage("assistant", ex.output)]
        msgs.append(ChatMessage("user", text))
        return tuple(msgs)

    def check(self, gen: Generation) -> Outcome:
        """The constraint's verdict, then every validator's (a grounded contract: `for_text` first)."""
        outcome = settle(self.constraint, gen.text, gen.finish_reason, gen.tool_calls)
        if not outcome.valid:
            return outcome
        for path, fn in self.validators:
            try:
                problem = fn(gen.text)
            except Exception as exc:  # a validator that crashes rejects the answer; it never crashes us
                problem = f"validator raised {type(exc).__name__}: {exc}"
            if problem:
                return Outcome(outcome.content, outcome.tool_calls, valid=False, problem=f"{path}: {problem}")
        return outcome


def _with_grounding(declared: AcceptRule, rule: AcceptRule) -> AcceptRule:
    """A calibrated rule (log-prob thresholds) keeps the declared grounding thresholds, which calibration does
    not fit."""
    if rule is declared or (declared.min_retrieval is None and declared.min_support is None):
        return rule
    return rule.model_copy(update={"min_retrieval": declared.min_retrieval, "min_support": declared.min_support})


def never_accepts(rule: AcceptRule) -> bool:
    """The rule can accept no answer (calibration installs this when no threshold holds the target)."""
    return any(v is not None and v == math.inf for v in (rule.min_mean_logprob, rule.min_token_logprob,
                                                         rule.min_margin, rule.min_agreement))


def _import_validator(contract: str, path: str) -> Validator:
    module, _, name = path.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"contract {contract!r}: validator {path!r} cannot be imported: {exc}") from None
    if not callable(fn):
        raise ConfigError(f"contract {contract!r}: validator {path!r} is not callable")
    return fn


@dataclass
class Attempt:
    """One rung's part in answering a request."""

    rung: int
    model: str
    status: str  # accepted | rejected | failed | skipped | shadow
    reason: str | None = None
    signals: dict[str, object] | None = None
    output: str | None = None
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    location: str = "local"
    started_at: float | None = None  # wall clock (epoch s) when the rung was called: spans are drawn from it


@dataclass
class RouteResult:
    contract: str
    outcome: Outcome | None
    generation: Generation | None
    rung: int | None
    model: str | None
    escalation_reason: str | None
    confidence: float | None
    attempts: list[Attempt] = field(default_factory=list)
    latency_ms: float = 0.0
    # Contracts with `egress: redact` or `local_only`: the input as the ladder saw it (sensitive values
    # replaced by placeholders) and the table to restore the answer with. `outcome` and `generation`
    # stay in that redacted view (traces and training data are kept in it); `restored()` is the caller's.
    view: str | None = None
    redaction: Redaction | None = None
    # Grounded contracts: the input with its passages (before any redaction) and what retrieval found.
    grounded_input: str | None = None
    retrieval: dict[str, object] | None = None
    cached: str | None = None  # contracts with `cache:`: exact | semantic (a hit), miss, or sensitive (bypassed)

    def restored(self) -> RouteResult:
        """This result as the caller receives it: placeholders in the answer replaced by the values."""
        if self.redaction is None or not self.redaction.table:
            return self
        json_text = self.generation is not None and _looks_json(self.generation.text)
        gen = self.redaction.restore_generation(self.generation, json_text) if self.generation else None
        outcome = None
        if self.outcome is not None:
            content = self.outcome.content
            if content is not None:
                content = self.redaction.restore_json(content) if json_text else self.redaction.restore(content)
            calls = tuple(replace(c, arguments=self.redaction.restore_json(c.arguments))
                          for c in self.outcome.tool_calls)
            outcome = replace(self.outcome, content=content, tool_calls=calls)
        return replace(self, outcome=outcome, generation=gen)

    @property
    def cost(self) -> float:
        return sum(a.cost for a in self.attempts)

    @property
    def local(self) -> bool:
        """Answered by a local rung."""
        return any(a.status == "accepted" and a.location == "local" for a in self.attempts) or (
            self.rung is not None and any(a.rung == self.rung and a.location == "local" for a in self.attempts))

    def attempts_json(self) -> list[dict[str, object]]:
        return [asdict(a) for a in self.attempts]


class NoAnswer(BackendError):
    """Every rung failed, was rejected or was not allowed to run."""

    code = "no_acceptable_answer"


def no_answer(contract: str, result: RouteResult) -> SmallfleetError:
    """The error for a route that produced no answer: 429 `insufficient_quota` when a budget kept a rung from
    running (the client can act on that), else `NoAnswer`."""
    if any(a.reason == "budget_exhausted" for a in result.attempts):
        return BudgetExhausted(f"contract {contract!r}: no acceptable answer within budget ({result.escalation_reason})")
    return NoAnswer(f"contract {contract!r}: no rung produced an acceptable answer ({result.escalation_reason})")


@dataclass
class RouterState:
    """Mutable routing state shared by all requests of one gateway process: the breakers. (Spend is in the
    trace store's ledger, shared by every process: `guard.budget`.)"""

    breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    observer: RouteObserver | None = None  # told of retries and breaker changes (the gateway's metrics)

    def breaker_changed(self, model: str) -> None:
        if self.observer is not None:
            try:
                self.observer.breaker(model, self.breaker(model).state)
            except Exception:  # noqa: BLE001 - a metrics failure never fails a request
                logging.getLogger("smallfleet.router").exception("route observer failed")

    def breaker(self, model: str) -> CircuitBreaker:
        if model not in self.breakers:
            self.breakers[model] = CircuitBreaker(clock=self.clock)
        return self.breakers[model]


class Router:
    """Runs contracts over a fleet."""

    def __init__(self, fleet: Fleet, contracts: dict[str, Contract], state: RouterState | None = None,
                 library: Library | None = None) -> None:
        self.fleet = fleet
        self.contracts = contracts
        self.state = state or RouterState()
        self.library = library
        self.cache: AnswerCache | None = None

    def contract(self, name: str) -> Contract:
        return self.contracts[name]

    def policy(self, name: str) -> Policy:
        """The egress policy for contract `name` now: the strictest of the contract's, the caller's (its tenant,
        entered as an egress scope by the API) and the fleet's default."""
        return stricter(self.contracts[name].spec.egress, self.fleet.guard.scope().policy)

    async def view(self, name: str, text: str) -> tuple[str, Redaction | None]:
        """The input as the ladder sees it: under a `redact` or `local_only` policy (see `policy`), sensitive values
        replaced by placeholders (so local rungs, traces and the specialists trained on them all see one view)."""
        if self.policy(name) == "allow":
            return text, None
        redaction = Redaction()
        messages = await self.fleet.guard.redact((ChatMessage("user", text),), redaction)
        return messages[0].content, redaction

    async def run(self, name: str, text: str, *, shadow: bool = False) -> RouteResult:
        """Route `text` through the contract's ladder under its egress policy (and any stricter one in force),
        answering from the cache instead where the contract allows it and the answer may be served. The
        contract is read once: a promotion swapping it mid-request changes nothing for this request."""
        started = time.perf_counter()
        contract = self.contracts[name]
        spec = contract.spec
        question = text
        cache = AnswerCacheUse(self.cache, self.fleet.guard) if self.cache is not None and spec.cache and not shadow \
            else None
        kb_version = None
        if cache is not None and spec.grounding is not None and self.library is not None:
            kb_version = await asyncio.to_thread(self.library.version, spec.grounding.knowledge_base)
        lookup = await cache.lookup(contract, text, kb_version) if cache is not None else None
        if cache is not None and lookup is not None and lookup.entry is not None:
            return await self._answer_cached(contract, cache, lookup, question, started)
        found: Retrieval | None = None
        vector = None  # a classification contract's question embedding, for its semantic cache
        semantic = cache is not None and lookup is not None and lookup.key is not None and spec.cache is not None \
            and spec.cache.semantic is not None
        if spec.grounding is not None:
            text, found = await self.ground(contract, text)
            if semantic:
                hit = await asyncio.to_thread(cache.near, contract, lookup, found, question)  # type: ignore[union-attr, arg-type]
                if hit is not None:
                    return await self._answer_cached(contract, cache, hit, question, started)  # type: ignore[arg-type]
        elif semantic:
            vector, hit = await asyncio.to_thread(cache.near_question, contract, lookup, question,  # type: ignore[union-attr]
                                                  self.fleet.encoder.get)
            if hit is not None:
                return await self._answer_cached(contract, cache, hit, question, started)  # type: ignore[arg-type]
        view, redaction = await self.view(name, text)
        with egress_scope(spec.egress, contract=name, redaction=redaction):
            result = await self._run(contract, view, shadow, found)
        result.view, result.redaction = view, redaction
        if found is not None:
            result.grounded_input = text
            result.retrieval = {"knowledge_base": spec.grounding.knowledge_base, "ids": found.ids(),  # type: ignore[union-attr]
                                "top_cosine": round(found.top_cosine, 4), "margin": round(found.margin, 4),
                                "ms": round(found.ms, 1)}
        if cache is not None and lookup is not None:
            result.cached = lookup.status
            cache.keep(contract, lookup, question, result, found, vector)
        return result

    async def _answer_cached(self, contract: Contract, cache: AnswerCacheUse, lookup: CacheLookup, question: str,
                             started: float) -> RouteResult:
        """A cached answer as a route result. Under a `redact` or `local_only` policy it is put in the ladder's
        view (placeholders, as a routed answer would be), so the trace keeps no raw values; the caller gets them
        back from `restored()`."""
        result = cache.answer(contract, lookup, started)
        if self.policy(contract.spec.name) == "allow" or result.outcome is None:
            return result
        view, redaction = await self.view(contract.spec.name, question)
        assert redaction is not None
        content = result.outcome.content
        if content is not None:
            masked = await self.fleet.guard.redact((ChatMessage("assistant", redaction.mask_known(content)),),
                                                   redaction)
            content = masked[0].content
        gen = replace(result.generation, text=content or "") if result.generation is not None else None
        attempts = [replace(a, output=content) for a in result.attempts]
        return replace(result, outcome=replace(result.outcome, content=content), generation=gen, view=view,
                       redaction=redaction, attempts=attempts)

    async def ground(self, contract: Contract, question: str) -> tuple[str, Retrieval]:
        """A grounded contract's input: the top passages of its knowledge base for `question`, then the question."""
        grounding = contract.spec.grounding
        assert grounding is not None
        if self.library is None:
            raise KnowledgeBaseUnavailable(f"contract {contract.spec.name!r} is grounded but this router has no "
                                           "knowledge bases")
        found = await asyncio.to_thread(self.library.search, grounding.knowledge_base, question, grounding.top_k)
        return grounded.compose(question, grounded.passages_of(found, grounding.passage_words)), found

    async def _run(self, contract: Contract, text: str, shadow: bool, found: Retrieval | None = None) -> RouteResult:
        name = contract.spec.name
        if found is not None:
            contract = replace(contract, retrieval=found.top_cosine)
        spec = contract.spec
        started = time.perf_counter()
        attempts: list[Attempt] = []
        first_reason: str | None = None
        best: tuple[int, Generation, Outcome, Signals] | None = None
        start = 0
        if contract.predictor is not None and len(spec.ladder) > 1:
            if contract.predictor.success_probability(text) < contract.skip_below:
                attempts.append(Attempt(0, spec.ladder[0].model, "skipped", "predicted_hard"))
                first_reason, start = "predicted_hard", 1
        chosen: tuple[int, Generation, Outcome, Signals] | None = None
        deferred: list[int] = []  # rungs whose rule never accepts: only a fallback if nothing above answers
        for i in range(start, len(spec.ladder)):
            rung = spec.ladder[i]
            entry = self.fleet.resolve(rung.model)
            blocked = self._blocked(contract, entry, started)
            if blocked:
                attempts.append(Attempt(i, rung.model, "skipped", blocked, location=entry.info.location))
                first_reason = first_reason or blocked
                continue
            need = contract.rules[i].min_retrieval
            if (contract.retrieval is not None and need is not None and contract.retrieval < need
                    and i < len(spec.ladder) - 1 and not shadow):  # known before generation: skip, don't run
                attempts.append(Attempt(i, rung.model, "skipped", "low_retrieval_confidence",
                                        location=entry.info.location))
                first_reason = first_reason or "low_retrieval_confidence"
                continue
            if not shadow and i < len(spec.ladder) - 1 and never_accepts(contract.rules[i]):
                deferred.append(i)  # calibration found no threshold that holds the target here
                first_reason = first_reason or "calibrated_escalate"
                continue
            result = await self._attempt(contract, i, rung, entry, text)
            attempts.append(result[0])
            if result[1] is None:
                first_reason = first_reason or result[0].reason
                continue
            _, gen, outcome, signals = result
            last = i == len(spec.ladder) - 1
            reason = None if last and outcome.valid else rejection(signals, contract.rules[i])
            if reason is None:
                result[0].status = "accepted"
                chosen = (i, gen, outcome, signals)
                break
            result[0].status, result[0].reason = "rejected", reason
            first_reason = first_reason or reason
            if outcome.valid and best is None:
                best = (i, gen, outcome, signals)
        for i in deferred if chosen is None and best is None else []:
            rung = spec.ladder[i]
            result = await self._attempt(contract, i, rung, self.fleet.resolve(rung.model), text)
            attempts.append(result[0])
            if result[1] is not None:
                result[0].status, result[0].reason = "rejected", "calibrated_escalate"
                if result[2] is not None and result[2].valid:
                    best = (i, result[1], result[2], result[3])  # type: ignore[assignment]
                    break
        if chosen is None and best is not None:
            chosen = best  # nothing better could run: the best valid answer, flagged by escalation_reason
            first_reason = f"{first_reason}; kept rung {best[0]}: no higher rung could answer"
        if shadow and chosen is not None:
            await self._shadow(contract, text, attempts)
        elapsed = (time.perf_counter() - started) * 1000
        if chosen is None:
            return RouteResult(name, None, None, None, None, first_reason, None, attempts, elapsed)
        i, gen, outcome, signals = chosen
        return RouteResult(name, outcome, gen, i, spec.ladder[i].model, first_reason if i > 0 or best else None,
                           signals.confidence, attempts, elapsed)

    async def ask_top(self, name: str, text: str) -> tuple[str | None, str]:
        """The top rung's valid answer to `text` (live quality checks; `text` in the ladder's view, see `view`),
        or None with the reason it was not asked or not valid. Policy applies as for any request: egress,
        budget (the guard charges the contract and the tenant of the egress scope in force), breaker."""
        with egress_scope(self.contracts[name].spec.egress, contract=name):
            return await self._ask_top(name, text)

    async def _ask_top(self, name: str, text: str) -> tuple[str | None, str]:
        contract = self.contracts[name]
        top = len(contract.spec.ladder) - 1
        rung = contract.spec.ladder[top]
        entry = self.fleet.resolve(rung.model)
        blocked = self._blocked(contract, entry, time.perf_counter())
        if blocked:
            return None, blocked
        attempt, gen, outcome, _ = await self._attempt(contract, top, rung, entry, text)
        if gen is None or outcome is None:
            return None, attempt.reason or "failed"
        if not outcome.valid:
            return None, "invalid_output"
        return answer_text(gen, outcome), rung.model

    def _blocked(self, contract: Contract, entry: FleetEntry, started: float) -> str | None:
        spec = contract.spec
        if entry.info.location == "remote":
            if self.policy(spec.name) == "local_only":  # (the guard would refuse it too: this only saves the attempt)
                return "egress_local_only"
        if spec.latency_budget_ms is not None and (time.perf_counter() - started) * 1000 > spec.latency_budget_ms:
            return "latency_budget_spent"
        if not self.state.breaker(entry.info.id).allow():
            return "circuit_open"
        return None

    async def _attempt(self, contract: Contract, i: int, rung: Rung, entry: FleetEntry,
                       text: str) -> tuple[Attempt, Generation | None, Outcome | None,
                                                                   Signals | None]:
        attempt = Attempt(i, rung.model, "failed", location=entry.info.location)
        contract = contract.for_text(text)
        messages = contract.messages(text, rung)
        t0 = time.perf_counter()
        attempt.started_at = time.time()
        try:
            gen = await self._call(contract, rung, entry, messages, seed=None)
        except ContextLengthExceeded:
            attempt.reason = "context_too_long"
            return attempt, None, None, None
        except BudgetExhausted:  # the guard reserved nothing: the rung was not called
            attempt.status, attempt.reason = "skipped", "budget_exhausted"
            return attempt, None, None, None
        except Overloaded:
            attempt.reason = "busy"
            return attempt, None, None, None
        except SmallfleetError as exc:
            attempt.reason = f"backend_error: {exc.code or exc.type}"
            return attempt, None, None, None
        finally:
            attempt.latency_ms = (time.perf_counter() - t0) * 1000
        self._account(contract, entry, gen, attempt)
        outcome = contract.check(gen)
        agreement = (await self._agreement(contract, rung, entry, messages, outcome, attempt)
                     if rung.samples > 1 else None)
        signals = signals_of(gen, outcome.valid, agreement)
        if contract.spec.grounding is not None:
            signals = replace(signals, retrieval=contract.retrieval,
                              support=grounded.support(answer_text(gen, outcome), text) if outcome.valid else None)
        attempt.signals, attempt.output = signals.as_dict(), answer_text(gen, outcome)
        if not outcome.valid:
            attempt.signals["problem"] = outcome.problem
        return attempt, gen, outcome, signals

    async def _call(self, contract: Contract, rung: Rung, entry: FleetEntry, messages: tuple[ChatMessage, ...],
                    seed: int | None, temperature: float = 0.0) -> Generation:
        breaker = self.state.breaker(entry.info.id)
        params = SamplingParams(max_tokens=contract.spec.max_tokens, temperature=temperature, seed=seed,
                                top_logprobs=2 if entry.info.location == "local" else 0,
                                constraint_instructions=rung.prompt != "bare")
        last: SmallfleetError | None = None
        for attempt in range(rung.retries + 1):
            try:
                async with entry.admission.slot():
                    gen = await asyncio.wait_for(entry.backend.generate(messages, params, contract.constraint),
                                                 rung.timeout_s)
                breaker.success()
                self.state.breaker_changed(entry.info.id)
                return gen
            except TimeoutError:
                last = BackendTimeout(f"{entry.info.id} did not answer within {rung.timeout_s:g}s")
            except TRANSIENT as exc:
                last = exc
            except BackendError:
                breaker.failure()
                self.state.breaker_changed(entry.info.id)
                raise
            if attempt < rung.retries:
                if self.state.observer is not None:
                    try:
                        self.state.observer.retry(entry.info.id)
                    except Exception:  # noqa: BLE001 - a metrics failure never fails a request
                        logging.getLogger("smallfleet.router").exception("route observer failed")
                await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
        assert last is not None
        if not isinstance(last, Overloaded):  # busy is not broken: it does not trip the breaker
            breaker.failure()
            self.state.breaker_changed(entry.info.id)
        raise last

    async def _agreement(self, contract: Contract, rung: Rung, entry: FleetEntry,
                         messages: tuple[ChatMessage, ...], first: Outcome, attempt: Attempt) -> float:
        """The share of k samples agreeing with the first answer; every sample is charged to `attempt`. A sample
        that fails counts as disagreeing; samples a budget refused (never drawn) are left out of the share."""
        same, drawn = 1, rung.samples
        for k in range(1, rung.samples):
            try:
                gen = await self._call(contract, rung, entry, messages, seed=k, temperature=0.7)
            except BudgetExhausted:
                drawn = k  # the budget stops the sampling here: the share is of what was drawn
                break
            except SmallfleetError:
                continue
            self._account(contract, entry, gen, attempt)
            same += _canonical(contract.check(gen)) == _canonical(first)
        return same / drawn

    async def _shadow(self, contract: Contract, text: str,
                      attempts: list[Attempt]) -> None:
        done = {a.rung for a in attempts if a.status in ("accepted", "rejected")}
        for i in range(len(contract.spec.ladder)):
            if i in done:
                continue
            rung = contract.spec.ladder[i]
            entry = self.fleet.resolve(rung.model)
            if entry.info.location == "remote" and self.policy(contract.spec.name) == "local_only":
                continue
            result = await self._attempt(contract, i, rung, entry, text)
            result[0].status = "shadow" if result[1] is not None else "failed"
            attempts.append(result[0])

    def _account(self, contract: Contract, entry: FleetEntry, gen: Generation, attempt: Attempt) -> None:
        """Count one generation (the attempt's answer or one of its agreement samples) in the attempt (the budgets
        were charged by the guard when the call was made)."""
        attempt.prompt_tokens += gen.prompt_tokens
        attempt.completion_tokens += gen.completion_tokens
        attempt.cost += entry.info.cost(gen)


def answer_text(gen: Generation, outcome: Outcome) -> str:
    """What an attempt answered, comparable across rungs: the text, or the calls as a JSON list.

    Local models write calls in their own formats and remote servers return them as fields, so calls
    are recorded in one form (`[{"name": ..., "arguments": {...}}]`) for calibration and reports.
    """
    if not outcome.tool_calls:
        return gen.text
    return json.dumps([{"name": c.name, "arguments": _arguments(c.arguments)} for c in outcome.tool_calls],
                      ensure_ascii=False)


def _looks_json(text: str) -> bool:
    """A JSON object or array (a schema-constrained answer): values are restored JSON-escaped inside it."""
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        return False
    try:
        return isinstance(json.loads(text), (dict, list))
    except ValueError:
        return False


def _arguments(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _canonical(outcome: Outcome) -> str:
    if outcome.tool_calls:
        return json.dumps([(c.name, json.loads(c.arguments)) for c in outcome.tool_calls], sort_keys=True)
    return canonical(outcome.content or "")
