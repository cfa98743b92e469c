"""Every escalation path of the router, driven by scripted fake backends in milliseconds."""

from __future__ import annotations

import asyncio
import time

import pytest

from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend, FakeReply
from smallfleet.contracts.spec import ContractSpec
from smallfleet.errors import BackendError, BackendUnavailable, ConfigError, ContextLengthExceeded
from smallfleet.fleet import Fleet
from smallfleet.route.breaker import CircuitBreaker
from smallfleet.guard.budget import spent_by_window, window_names
from smallfleet.route.router import Contract, Router, RouterState
from smallfleet.runtime import meter_for
from smallfleet.trace.store import NANO

SCHEMA = {"type": "object", "properties": {"category": {"enum": ["billing", "tech", "other"]}},
          "required": ["category"], "additionalProperties": False}
GOOD = '{"category": "billing"}'


def spec(**overrides) -> ContractSpec:
    data = {"name": "triage", "instructions": "Classify.", "output": {"json_schema": SCHEMA},
            "ladder": [{"model": "small", "accept": {"min_mean_logprob": -0.5}},
                       {"model": "big", "retries": 1}]}
    data.update(overrides)
    return ContractSpec.model_validate(data)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def small() -> FakeBackend:
    return FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))


@pytest.fixture
def big() -> FakeBackend:
    return FakeBackend(info=ModelInfo(id="big", location="remote", context_window=None, price_per_1k_input=1.0,
                                      price_per_1k_output=2.0))


def router(small: FakeBackend, big: FakeBackend, contract: ContractSpec | None = None,
           state: RouterState | None = None) -> Router:
    c = Contract.load(contract or spec())
    return Router(Fleet.of_backends([small, big]), {c.spec.name: c}, state)


def run(r: Router, text: str = "I was charged twice", **kw):
    return asyncio.run(r.run("triage", text, **kw))


def test_confident_valid_local_answer_is_kept(small, big) -> None:
    small.enqueue([FakeReply(GOOD, logprob=-0.1)])
    result = run(router(small, big))
    assert result.rung == 0 and result.model == "small" and result.escalation_reason is None
    assert result.cost == 0.0 and not big.history
    assert result.confidence == pytest.approx(0.905, abs=1e-3)
    assert [a.status for a in result.attempts] == ["accepted"]
    assert small.history[0].messages[0].content == "Classify." and small.history[0].constraint is not None


def test_low_confidence_escalates(small, big) -> None:
    small.enqueue([FakeReply(GOOD, logprob=-2.0)])
    big.enqueue([GOOD])
    result = run(router(small, big))
    assert result.rung == 1 and result.escalation_reason == "low_mean_logprob"
    assert [a.status for a in result.attempts] == ["rejected", "accepted"]
    assert result.cost > 0 and result.attempts[1].cost == result.cost


def test_invalid_output_escalates(small, big) -> None:
    small.enqueue([FakeReply('{"category": "weather"}', logprob=-0.01)])
    big.enqueue([GOOD])
    result = run(router(small, big))
    assert result.rung == 1 and result.escalation_reason == "invalid_output"
    assert "/category" in result.attempts[0].signals["problem"]


def test_validator_rejection_escalates(small, big) -> None:
    contract = spec(validators=["tests.route.validators_for_tests:no_other"])
    small.enqueue([FakeReply('{"category": "other"}', logprob=-0.01)])
    big.enqueue([GOOD])
    result = run(router(small, big, contract))
    assert result.rung == 1 and "not allowed" in result.attempts[0].signals["problem"]


def test_unimportable_validator_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot be imported"):
        Contract.load(spec(validators=["nowhere.module:fn"]))


def test_backend_failure_falls_back_to_the_next_rung(small, big) -> None:
    small.enqueue([FakeReply("", error=BackendError("engine exploded"))])
    big.enqueue([GOOD])
    result = run(router(small, big))
    assert result.rung == 1 and result.escalation_reason.startswith("backend_error")


def test_transient_errors_are_retried_on_the_same_rung(small, big) -> None:
    small.enqueue([FakeReply(GOOD, logprob=-3.0)])
    big.enqueue([FakeReply("", error=BackendUnavailable("connection reset")), GOOD])
    result = run(router(small, big))
    assert result.rung == 1 and len(big.history) == 2


def test_rung_timeout_counts_as_a_failure(small, big) -> None:
    slow = spec(ladder=[{"model": "small", "timeout_s": 0.05}, {"model": "big"}])
    small.latency_s = 0.5
    big.enqueue([GOOD])
    result = run(router(small, big, slow))
    assert result.rung == 1 and result.attempts[0].reason == "backend_error: backend_timeout"


def test_context_too_long_for_the_small_model_escalates(small, big) -> None:
    small.enqueue([FakeReply("", error=ContextLengthExceeded("too long"))])
    big.enqueue([GOOD])
    result = run(router(small, big))
    assert result.rung == 1 and result.escalation_reason == "context_too_long"


def test_circuit_breaker_opens_then_lets_one_trial_through(small, big) -> None:
    clock = Clock()
    state = RouterState(clock=clock)
    r = router(small, big, spec(ladder=[{"model": "big"}, {"model": "small"}]), state)
    for _ in range(3):
        big.enqueue([FakeReply("", error=BackendError("500 from upstream"))])
        small.enqueue([FakeReply(GOOD)])
        assert run(r).model == "small"
    small.enqueue([FakeReply(GOOD)])
    result = run(r)  # open: big is not called at all
    assert result.attempts[0].status == "skipped" and result.attempts[0].reason == "circuit_open"
    assert len(big.history) == 3
    clock.now = 31.0  # cool-down over: half-open, one trial call
    big.enqueue([GOOD])
    assert run(r).model == "big" and state.breaker("big").state == "closed"


def test_breaker_states() -> None:
    clock = Clock()
    b = CircuitBreaker(failure_threshold=2, cooldown_s=10, clock=clock)
    b.failure()
    assert b.allow()
    b.failure()
    assert b.state == "open" and not b.allow()
    clock.now = 10
    assert b.allow() and not b.allow()  # one trial at a time
    b.failure()
    assert b.state == "open"


def test_budget_blocks_remote_rungs_and_keeps_the_local_answer(small, big, store) -> None:  # noqa: ANN001
    r = router(small, big, spec(budget_usd=1.0))
    r.fleet.guard.meter = meter_for(store, r, lambda _: None)
    store.reserve([(("contract", "triage", "total"), None)], NANO)  # $1 spent already (another replica, say)
    small.enqueue([FakeReply(GOOD, logprob=-2.0)])
    result = run(r)
    assert result.rung == 0 and not big.history
    assert result.attempts[1].status == "skipped" and result.attempts[1].reason == "budget_exhausted"
    assert "kept rung 0" in result.escalation_reason


def test_the_budget_is_charged_what_calls_cost_and_holds_are_given_back(small, big, store) -> None:  # noqa: ANN001
    r = router(small, big, spec(budget_usd=100.0, budget_per_day_usd=50.0))
    r.fleet.guard.meter = meter_for(store, r, lambda _: None)
    small.enqueue([FakeReply(GOOD, logprob=-2.0)])
    big.enqueue([GOOD])
    result = run(r)
    spent = spent_by_window(store, "contract", "triage", time.time())
    assert result.rung == 1 and result.cost > 0
    assert spent["total"] == spent["day"] == spent["month"] == pytest.approx(result.cost, abs=1e-9)


def test_a_day_budget_counts_today_only(small, big, store) -> None:  # noqa: ANN001
    r = router(small, big, spec(budget_per_day_usd=10.0, max_tokens=100))
    r.fleet.guard.meter = meter_for(store, r, lambda _: None)
    names = window_names(time.time())
    yesterday = window_names(time.time() - 86400)["day"]
    store.reserve([(("contract", "triage", yesterday), None)], 9_990_000_000)  # $9.99 yesterday: not today's
    small.enqueue([FakeReply(GOOD, logprob=-2.0)] * 2)
    big.enqueue([GOOD] * 2)
    assert run(r).rung == 1
    store.reserve([(("contract", "triage", names["day"]), None)], 9_990_000_000)  # $9.99 today
    result = run(r)
    assert result.rung == 0 and len(big.history) == 1 and result.attempts[1].reason == "budget_exhausted"


def test_local_only_egress_never_calls_a_remote_rung(small, big) -> None:
    small.enqueue([FakeReply(GOOD, logprob=-2.0)])
    result = run(router(small, big, spec(egress="local_only")))
    assert not big.history and result.rung == 0
    assert result.attempts[1].reason == "egress_local_only"


def test_disagreement_across_samples_escalates(small, big) -> None:
    contract = spec(ladder=[{"model": "small", "samples": 3, "accept": {"min_agreement": 1.0}}, {"model": "big"}])
    small.enqueue([FakeReply(GOOD, logprob=-0.1), FakeReply('{"category": "tech"}'), FakeReply(GOOD)])
    big.enqueue([GOOD])
    result = run(router(small, big, contract))
    assert result.escalation_reason == "disagreement"
    assert result.attempts[0].signals["agreement"] == pytest.approx(2 / 3)
    assert small.history[1].params.temperature > 0


def test_predictor_skips_the_first_rung_for_hard_inputs(small, big) -> None:
    class Pessimist:
        def success_probability(self, text: str) -> float:
            return 0.1

    r = router(small, big)
    r.contracts["triage"].predictor, r.contracts["triage"].skip_below = Pessimist(), 0.5
    big.enqueue([GOOD])
    result = run(r)
    assert not small.history and result.rung == 1 and result.escalation_reason == "predicted_hard"


def test_shadow_runs_the_higher_rungs_without_changing_the_answer(small, big) -> None:
    small.enqueue([FakeReply(GOOD, logprob=-0.1)])
    big.enqueue(['{"category": "tech"}'])
    result = run(router(small, big), shadow=True)
    assert result.rung == 0 and result.outcome.content == GOOD
    assert [a.status for a in result.attempts] == ["accepted", "shadow"]
    assert result.attempts[1].output == '{"category": "tech"}'


def test_no_rung_can_answer(small, big) -> None:
    small.enqueue([FakeReply("nope", logprob=-0.1)])
    big.enqueue([FakeReply("", error=BackendError("down")), FakeReply("", error=BackendError("down"))])
    result = run(router(small, big))
    assert result.outcome is None and result.rung is None


def test_a_rung_calibrated_to_escalate_is_skipped_but_kept_as_fallback(small, big) -> None:
    import math

    from smallfleet.contracts.spec import AcceptRule

    c = Contract.load(spec(), {"small": AcceptRule(min_mean_logprob=math.inf)})  # calibrated: never accept small
    r = Router(Fleet.of_backends([small, big]), {"triage": c})
    big.enqueue([GOOD])
    result = run(r)
    assert result.model == "big" and small.history == []  # not run: it could not be accepted anyway
    assert result.escalation_reason == "calibrated_escalate"
    assert [(a.rung, a.status) for a in result.attempts] == [(1, "accepted")]
    big.enqueue([FakeReply("", error=BackendUnavailable("down")), FakeReply("", error=BackendUnavailable("down"))])
    small.enqueue([FakeReply(GOOD, logprob=-0.1)])
    fallback = run(r)
    assert fallback.model == "small" and fallback.outcome.content == GOOD  # nothing above answered
    assert "kept rung 0" in fallback.escalation_reason
    small.enqueue([GOOD])
    big.enqueue([GOOD])
    shadowed = run(r, shadow=True)  # calibration data still collects rung 0's answers
    assert any(a.rung == 0 and a.status != "skipped" for a in shadowed.attempts)


@pytest.mark.parametrize("prompt, described", [("contract", True), ("input", True), ("bare", False)])
def test_each_rung_gets_the_prompt_it_was_trained_on(small, big, prompt: str, described: bool) -> None:
    small.enqueue([FakeReply(GOOD, logprob=-0.1)])
    contract = spec(ladder=[{"model": "small", "prompt": prompt}, {"model": "big"}])
    run(router(small, big, contract))
    [call] = small.history
    assert [m.role for m in call.messages] == (["system", "user"] if prompt == "contract" else ["user"])
    assert call.params.constraint_instructions is described  # bare: the backend leaves the schema text out


def test_samples_a_budget_refuses_are_left_out_of_the_agreement(small, big) -> None:  # noqa: ANN001
    from smallfleet.guard.budget import BudgetExhausted, Hold

    class TwoCalls:  # a meter that pays for two calls, then refuses
        calls = 0

        def reserve(self, contract: str | None, tenant: str | None, usd: float) -> Hold:
            self.calls += 1
            if self.calls > 2:
                raise BudgetExhausted("spent")
            return Hold((), 0)

        def settle(self, hold: Hold | None, usd: float) -> None:
            pass

    r = router(small, big, spec(ladder=[{"model": "big", "samples": 3}]))
    r.fleet.guard.meter = TwoCalls()  # type: ignore[assignment]
    big.enqueue([GOOD, GOOD, GOOD])
    result = run(r)
    assert len(big.history) == 2 and result.attempts[0].signals["agreement"] == 1.0  # 2 of 2 drawn, not 2 of 3
