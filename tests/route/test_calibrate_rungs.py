"""Per-rung calibration: samples for any rung, a rule for every rung but the top, a held-out check that
binds, and the report's per-rung breakdown."""

from __future__ import annotations

import json
import math
from pathlib import Path

from smallfleet.contracts.spec import AcceptRule, ContractSpec
from smallfleet.route.calibrate import (
    Sample,
    calibrate,
    calibrate_rungs,
    in_holdout,
    installed_rules,
    samples_from,
)
from smallfleet.route.report import report
from smallfleet.route.router import Contract
from smallfleet.route.thresholds import ThresholdStore
from smallfleet.trace.record import Trace


def attempt(rung: int, status: str, output: str | None, mean: float = -0.1, valid: bool = True,
            location: str = "local", cost: float = 0.0) -> dict:
    signals = None if status == "failed" else {"valid": valid, "mean_logprob": mean, "min_logprob": mean - 0.5,
                                                 "min_margin": None}
    return {"rung": rung, "model": ("small", "mid", "big", "top")[rung], "status": status, "output": output, "signals": signals,
            "location": location, "cost": cost}


def trace(tid: str, rung: int | None, output: str | None, attempts: list[dict], cost: float = 0.0,
          latency: float = 10.0) -> Trace:
    return Trace(id=tid, created_at=0.0, endpoint="x", model="c", contract="c", rung=rung, output=output,
                 attempts=attempts, cost=cost, latency_ms=latency)


def test_a_rung_is_judged_against_a_label_or_a_higher_rung_never_itself() -> None:
    traces = [
        # rung 1 accepted and nothing above it ran: a reference for rung 0, no sample for rung 1
        trace("a", 1, "y", [attempt(0, "rejected", "x"), attempt(1, "accepted", "y")]),
        # the highest valid answer above wins: rung 3's "z", even though rung 1 agrees with rung 2
        trace("b", 2, "y", [attempt(0, "rejected", "y"), attempt(1, "rejected", "y"), attempt(2, "accepted", "y"),
                            attempt(3, "shadow", "z")]),
        # rung 3 failed and an invalid answer is no reference: rung 1 is judged against rung 2's "b"
        trace("c", 0, "a", [attempt(0, "accepted", "a"), attempt(1, "shadow", "a"), attempt(2, "shadow", "b"),
                            attempt(3, "failed", None)]),
        trace("d", 1, "a", [attempt(0, "rejected", "q"), attempt(1, "accepted", "a"),
                            attempt(2, "shadow", "w", valid=False)]),
        # a label beats every rung's answer
        trace("e", 2, "q", [attempt(0, "rejected", "y"), attempt(1, "rejected", "y"), attempt(2, "accepted", "q")]),
        # a skipped rung carries no answer: no sample for it
        trace("f", 1, "y", [{"rung": 0, "status": "skipped", "reason": "predicted_hard"}, attempt(1, "accepted", "y"),
                            attempt(2, "shadow", "y")]),
    ]
    labels = {"e": "y"}
    rung1 = {s.trace_id: s.agrees for s in samples_from(traces, labels, rung=1)}
    assert rung1 == {"b": False, "c": False, "e": True, "f": True}
    rung0 = {s.trace_id: s.agrees for s in samples_from(traces, labels, rung=0)}
    assert rung0 == {"a": False, "b": False, "c": False, "d": False, "e": True}
    assert {s.trace_id for s in samples_from(traces, labels, rung=2)} == {"b", "e"}
    assert samples_from(traces, {}, rung=3) == []  # the top rung has nothing above it


def ladder_traces(n: int = 200) -> list[Trace]:
    """Three rungs: rung 0 is right on its 80 most confident answers, rung 1 on its 150, rung 2 is the top."""
    out = []
    for i in range(n):
        out.append(trace(f"t{i}", 2, "R", [
            attempt(0, "rejected", "R" if i < 80 else "W", mean=-0.01 * i),
            attempt(1, "rejected", "R" if i < 150 else "W", mean=-0.02 * i),
            attempt(2, "accepted", "R", location="remote", cost=0.01)]))
    return out


def test_every_rung_but_the_top_gets_its_own_rule() -> None:
    results = calibrate_rungs(ladder_traces(), {}, ["small", "mid", "big"], target=0.95, min_accepted=3)
    assert [(r.rung, r.model) for r in results] == [(0, "small"), (1, "mid")]
    assert all(r.installed and r.samples == 200 for r in results)
    assert 0.39 <= results[0].train.local_share <= 0.41 and 0.75 <= results[1].train.local_share <= 0.79
    rules = installed_rules(results)
    assert set(rules) == {"small", "mid"}  # nothing for the top rung: it is accepted as is
    assert rules["small"] != rules["mid"]
    json.dumps([r.as_dict() for r in results], allow_nan=False)  # JSON-friendly: no NaN or infinity


def split_samples(n: int, fraction: float, holdout_agrees: bool, holdout_valid: bool = True) -> list[Sample]:
    """Confident, right answers in the training part; the held-out part is right or wrong on demand."""
    out = []
    for i in range(n):
        tid = f"s{i}"
        held = in_holdout(tid, fraction)
        out.append(Sample(tid, holdout_valid if held else True,
                          {"mean_logprob": -0.1, "min_logprob": -0.2, "min_margin": None},
                          holdout_agrees if held else True))
    return out


def test_a_rule_that_fails_on_held_out_data_is_not_installed() -> None:
    result = calibrate(split_samples(100, 0.3, holdout_agrees=False), target=0.9, holdout=0.3)
    assert result.signal is not None and result.train.agreement == 1.0  # it held on the training part
    assert not result.installed and result.holdout.accepted == result.holdout_samples > 0
    assert result.why.startswith("held-out agreement 0.000 (0/") and "< target 0.9" in result.why
    assert result.rule().min_mean_logprob == math.inf  # always escalate
    data = result.as_dict()
    assert data["installed"] is False and data["accept_rule"] == "always escalate"


def test_a_rule_that_holds_on_held_out_data_is_installed() -> None:
    result = calibrate(split_samples(100, 0.3, holdout_agrees=True), target=0.9, holdout=0.3)
    assert result.installed and result.holdout.agreement == 1.0
    assert f"on {result.holdout_samples} held-out samples" in result.why
    rule = result.rule()
    assert math.isfinite(rule.min_mean_logprob or rule.min_token_logprob)


def test_a_held_out_part_that_accepts_nothing_cannot_contradict() -> None:
    result = calibrate(split_samples(100, 0.3, holdout_agrees=False, holdout_valid=False), target=0.9, holdout=0.3)
    assert result.installed and result.holdout.accepted == 0
    assert "cannot contradict" in result.why and f"0 of {result.holdout_samples}" in result.why
    assert result.as_dict()["holdout"]["agreement"] is None  # no accepted answer: no agreement to show


def test_a_tiny_held_out_part_is_flagged_as_weak_evidence() -> None:
    samples = split_samples(100, 0.3, holdout_agrees=True)
    held = [s for s in samples if in_holdout(s.trace_id, 0.3)]
    small = [s for s in samples if not in_holdout(s.trace_id, 0.3)] + held[:2]
    result = calibrate(small, target=0.9, holdout=0.3)
    assert result.installed and result.holdout_samples == 2 and "weak evidence" in result.why


def test_the_saved_rule_of_a_rung_that_failed_its_held_out_check_escalates_everything(tmp_path: Path) -> None:
    traces = ladder_traces(300)
    labels = {t.id: "X" for t in traces if in_holdout(t.id, 0.3)}  # every held-out answer is wrong
    results = calibrate_rungs(traces, labels, ["small", "mid", "big"], target=0.9, holdout=0.3)
    assert [r.installed for r in results] == [False, False] and all(r.signal for r in results)
    store = ThresholdStore(tmp_path)
    store.save("c", installed_rules(results), {"rungs": [r.as_dict() for r in results]})
    spec = ContractSpec.model_validate({"name": "c", "ladder": [
        {"model": "small", "accept": {"min_mean_logprob": -9}}, {"model": "mid"}, {"model": "big"}]})
    contract = Contract.load(spec, store.load("c"))
    assert contract.rules[0].min_mean_logprob == math.inf and contract.rules[1].min_mean_logprob == math.inf
    fine = calibrate_rungs(traces, {}, ["small", "mid", "big"], target=0.9, holdout=0.3)
    assert [r.installed for r in fine] == [True, True]
    store.save("c", installed_rules(fine), {})
    rules = Contract.load(spec, store.load("c")).rules
    assert all(math.isfinite(r.min_mean_logprob or r.min_token_logprob) for r in rules[:2])


def test_report_breaks_down_answers_by_rung() -> None:
    local0 = attempt(0, "accepted", "A")
    rejected0 = attempt(0, "rejected", "A")
    local1 = attempt(1, "accepted", "B")
    rejected1 = attempt(1, "rejected", "B")
    remote = attempt(2, "accepted", "C", location="remote", cost=0.02)
    traces = [
        trace("r0", 0, "A", [local0], latency=10.0),
        trace("r1", 0, "A", [local0], latency=30.0),
        trace("r2", 1, "B", [rejected0, local1], latency=50.0),
        trace("r3", 1, "B", [rejected0, local1, attempt(2, "shadow", "X", location="remote", cost=0.02)],
              cost=0.02, latency=70.0),
        trace("r4", 2, "C", [rejected0, rejected1, remote], cost=0.02, latency=90.0),
        trace("r5", None, None, [rejected0, attempt(1, "failed", None), attempt(2, "failed", None, location="remote")]),
    ]
    traces[-1].status = "error"
    labels = {"r0": "A", "r1": "Z", "r4": "C"}
    r = report(traces, labels)
    assert r["local_share"] == round(4 / 6, 4)  # both local rungs count as local
    by_rung = {row["rung"]: row for row in r["by_rung"]}
    assert set(by_rung) == {0, 1, 2}
    assert by_rung[0] == {"rung": 0, "model": "small", "location": "local", "answers": 2, "share": round(2 / 6, 4),
                          "quality_vs_reference": 0.5, "references": 2, "mean_cost_usd": 0.0, "latency_ms_p50": 20.0}
    # rung 1: r2 has no reference above it, r3 is judged against rung 2's shadow answer (and disagrees)
    assert by_rung[1]["location"] == "local" and by_rung[1]["references"] == 1
    assert by_rung[1]["quality_vs_reference"] == 0.0 and by_rung[1]["mean_cost_usd"] == 0.01
    assert by_rung[1]["latency_ms_p50"] == 60.0
    # the top rung is judged on labels only, never against itself
    assert by_rung[2]["location"] == "remote" and by_rung[2]["references"] == 1
    assert by_rung[2]["quality_vs_reference"] == 1.0 and by_rung[2]["share"] == round(1 / 6, 4)
    for key in ("local_share", "cost_usd", "cost_all_top_rung_usd", "quality_vs_reference", "local_answers_quality",
                "latency_ms", "escalations"):
        assert key in r


def test_rules_are_keyed_by_model_so_a_new_first_rung_does_not_inherit_the_old_ones(tmp_path: Path) -> None:
    store = ThresholdStore(tmp_path)
    store.save("c", {"small": AcceptRule(min_mean_logprob=-0.3), "mid": AcceptRule(min_margin=0.4)}, {})
    spec = ContractSpec.model_validate({"name": "c", "ladder": [
        {"model": "c-specialist@v1", "accept": {"min_mean_logprob": -0.01}}, "small", "mid", "big"]})
    rules = Contract.load(spec, store.load("c")).rules
    assert rules[0].min_mean_logprob == -0.01  # the new model keeps its declared rule, not small's
    assert rules[1].min_mean_logprob == -0.3 and rules[2].min_margin == 0.4 and rules[3] == AcceptRule()
    store.save("c", {"c-specialist@v1": AcceptRule(min_mean_logprob=-0.2)}, {}, merge=True)
    assert set(store.load("c")) == {"small", "mid", "c-specialist@v1"}


def test_a_calibration_file_keyed_by_rung_index_is_read_through_its_report(tmp_path: Path) -> None:
    store = ThresholdStore(tmp_path)
    store.folder.mkdir()
    store.path("c").write_text(json.dumps({"rungs": {"0": {"min_mean_logprob": -0.5}, "1": {"min_margin": 0.2}},
                                           "report": {"rungs": [{"rung": 0, "model": "small"}]}}))
    assert store.load("c") == {"small": AcceptRule(min_mean_logprob=-0.5)}  # index 1: model unknown, dropped


def test_rungs_are_calibrated_by_model_when_a_specialist_stands_in_front() -> None:
    plain = ladder_traces(100)
    shifted = []
    for t in ladder_traces(100):  # the same answers, served with a promoted specialist as rung 0
        attempts = [{**a, "rung": a["rung"] + 1} for a in t.attempts]
        spec0 = {"rung": 0, "model": "c-specialist@v1", "status": "rejected", "output": "W",
                 "signals": {"valid": True, "mean_logprob": -3.0}, "location": "local"}
        shifted.append(trace(t.id, 3, "R", [spec0, *attempts]))
    fitted = calibrate_rungs(shifted, {}, ["small", "mid", "big"], target=0.95, min_accepted=3)
    same = calibrate_rungs(plain, {}, ["small", "mid", "big"], target=0.95, min_accepted=3)
    assert [(c.model, c.threshold, c.samples) for c in fitted] == [(c.model, c.threshold, c.samples) for c in same]
