"""Calibration picks the most local threshold that holds the target; the report adds up correctly."""

from __future__ import annotations

import math

from smallfleet.route.calibrate import Sample, calibrate, evaluate, fit, samples_from
from smallfleet.route.predictor import TextPredictor, evaluate_predictor
from smallfleet.route.report import report
from smallfleet.trace.record import Trace


def sample(i: int, mean: float, agrees: bool, valid: bool = True) -> Sample:
    return Sample(f"t{i}", valid, {"mean_logprob": mean, "min_logprob": mean - 1, "min_margin": None}, agrees)


def test_threshold_maximises_local_share_under_the_target() -> None:
    # confident answers are right, unsure ones are wrong: the cut belongs between them
    samples = [sample(i, -0.01 * i, agrees=i < 80) for i in range(200)]
    result = fit(samples, target=0.95, min_accepted=3)
    assert result.signal in ("mean_logprob", "min_logprob")
    assert result.train.agreement >= 0.95 and 0.39 <= result.train.local_share <= 0.42
    small = fit([sample(i, -0.1 * i, agrees=i < 8) for i in range(20)], target=0.95, min_accepted=3)
    assert small.signal is None  # 8 of 8 right is not enough evidence for 95%
    rule = result.rule()
    assert (rule.min_mean_logprob or rule.min_token_logprob) is not None


def test_invalid_answers_are_never_accepted() -> None:
    samples = [sample(0, -0.01, agrees=True, valid=False), sample(1, -0.5, agrees=True)]
    assert evaluate(samples, "mean_logprob", -1.0).accepted == 1


def test_when_nothing_meets_the_target_everything_escalates() -> None:
    samples = [sample(i, -0.1 * i, agrees=False) for i in range(10)]
    result = fit(samples, target=0.9)
    assert result.signal is None and result.rule().min_mean_logprob == math.inf


def test_holdout_is_scored_on_samples_not_used_for_fitting() -> None:
    samples = [sample(i, -0.01 * i, agrees=i % 10 < 7) for i in range(200)]
    result = calibrate(samples, target=0.5, holdout=0.3)
    assert result.holdout is not None and 0 < result.samples < 200


def trace(i: int, rung: int, output: str, attempts: list[dict], cost: float = 0.0) -> Trace:
    return Trace(id=f"t{i}", created_at=float(i), endpoint="x", model="c", contract="c", rung=rung, output=output,
                 attempts=attempts, cost=cost, latency_ms=10.0 * (i + 1),
                 escalation_reason="low_mean_logprob" if rung else None)


def test_samples_come_from_first_rung_attempts_with_a_reference() -> None:
    first = {"rung": 0, "status": "rejected", "output": '{"a": 1}', "signals": {"valid": True, "mean_logprob": -1}}
    top = {"rung": 1, "status": "accepted", "output": '{"a": 2}', "signals": {"valid": True}}
    traces = [trace(0, 1, '{"a": 2}', [first, top]), trace(1, 1, '{"a":1}', [first, top])]
    samples = samples_from(traces, labels={"t1": '{"a": 1}'})
    assert [s.agrees for s in samples] == [False, True]  # t0 vs the top rung's answer, t1 vs its label


def test_report_counts_local_share_cost_quality_and_reasons() -> None:
    local = {"rung": 0, "status": "accepted", "location": "local", "output": '"A"', "signals": {"valid": True},
             "cost": 0.0}
    rejected = {**local, "status": "rejected"}
    remote = {"rung": 1, "status": "accepted", "location": "remote", "output": '"B"', "signals": {"valid": True},
              "cost": 0.01}
    traces = [trace(0, 0, '"A"', [local]), trace(1, 0, '"A"', [local]), trace(2, 1, '"B"', [rejected, remote], 0.01)]
    r = report(traces, labels={"t0": '"A"', "t1": '"X"', "t2": '"B"'})
    assert r["local_share"] == round(2 / 3, 4)
    assert r["cost_usd"] == 0.01 and r["cost_all_top_rung_usd"] == 0.03 and r["cost_reduction"] == round(2 / 3, 4)
    assert r["quality_vs_reference"] == round(2 / 3, 4) and r["escalations"] == {"low_mean_logprob": 1}
    assert r["latency_ms"]["p50"] == 20.0


def test_tool_call_answers_are_judged_by_their_calls_not_the_empty_text() -> None:
    call = '[{"name": "get_weather", "arguments": {"city": "Oslo"}}]'
    local = {"rung": 0, "status": "accepted", "location": "local", "output": call, "signals": {"valid": True}}
    wrong = {**local, "output": '[{"name": "get_time", "arguments": {"timezone": "Europe/Oslo"}}]'}
    text = {**local, "output": "Oslo is the capital of Norway."}
    # the trace's own output is the text content: empty for a call
    traces = [trace(0, 0, "", [local]), trace(1, 0, "", [wrong]), trace(2, 0, "Oslo is the capital of Norway.", [text])]
    labels = {"t0": '[{"arguments": {"city": "Oslo"}, "name": "get_weather"}]', "t1": call,
              "t2": "Oslo is the capital of Norway."}
    r = report(traces, labels)
    assert r["quality_vs_reference"] == round(2 / 3, 4) and r["local_answers_quality"] == round(2 / 3, 4)
    assert r["by_rung"][0]["quality_vs_reference"] == round(2 / 3, 4)


def test_predictor_learns_a_separable_signal_and_is_fast() -> None:
    texts = [f"please fix the router now {i}" if i % 2 else f"invoice number {i} from acme" for i in range(120)]
    succeeded = [i % 2 == 0 for i in range(120)]
    figures = evaluate_predictor(texts, succeeded)
    assert figures["accuracy"] >= 0.9 and figures["ms_per_decision"] < 5
    constant = TextPredictor().fit(["a", "b"], [False, False])
    assert constant.kind == "constant" and constant.success_probability("anything") == 0.0
