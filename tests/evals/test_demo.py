"""End to end: real embedded SmolLM2 -> simulated teacher over the reference workload (small slice)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smallfleet.evals.demo import run_demo


def test_demo_calibrates_then_routes_a_held_out_split(tmp_path: Path) -> None:
    result = run_demo(n_tickets=8, n_documents=8, home=tmp_path, shifted=4, n_agent=8)
    assert set(result["contracts"]) == {"ticket-triage", "invoice-extraction", "invoice-header", "agent-step"}
    for name, part in result["contracts"].items():
        report = part["held_out_report"]
        assert report["requests"] == part["held_out_items"] == 4
        assert report["answered"] == 4, name  # the teacher answers whatever the small model cannot
        assert 0.0 <= report["local_share"] <= 1.0
        assert report["cost_usd"] <= report["cost_all_top_rung_usd"] + 1e-9
        assert (tmp_path / "calibration" / f"{name}.json").is_file()
        assert part["predictor"]["ms_per_decision"] < 5
        assert "nothing trained" in part["distill"]["gate"]["reasons"][0]  # 4 calibration items: too few
        assert part["served_ladder"] == ["smollm2-135m", "teacher"]
    shifted = result["contracts"]["ticket-triage"]["shifted_report"]
    assert shifted["requests"] == 4 and shifted["answered"] == 4
    assert result["contracts"]["invoice-header"]["shifted_report"]["requests"] == 4  # shifted documents
    tools = result["contracts"]["agent-step"]["tool_scores"]
    assert tools["zero_shot_small_model_calibration_split"]["n"] == 4 and tools["served_shifted"]["n"] == 4
    # every held-out request was answered (locally or by the 97%-right teacher), so most decisions are right
    assert tools["served_held_out"]["n"] == 4 and tools["served_held_out"]["right_decision"] >= 0.5
    assert result["contracts"]["ticket-triage"]["tool_scores"] is None


def test_demo_runs_only_the_contracts_asked_for(tmp_path: Path) -> None:
    result = run_demo(n_tickets=4, n_documents=4, home=tmp_path, shifted=0, n_agent=4, contracts=("agent-step",),
                      shadow_rate=1.0)
    assert list(result["contracts"]) == ["agent-step"]
    guard = result["contracts"]["agent-step"]["live_guard"]  # live checks on: the rollback check ran
    assert guard["check"] is None  # nothing was promoted (2 calibration requests), so nothing to roll back
    assert guard["served_ladder_after"] == ["smollm2-135m", "teacher"] and guard["shadow_rate"] == 1.0
    with pytest.raises(ValueError, match="unknown demo contract"):
        run_demo(home=tmp_path, contracts=("nope",))
