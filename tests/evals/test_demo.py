"""End to end: real embedded SmolLM2 -> simulated teacher over the reference workload (small slice)."""

from __future__ import annotations

from pathlib import Path

from smallfleet.evals.demo import run_demo


def test_demo_calibrates_then_routes_a_held_out_split(tmp_path: Path) -> None:
    result = run_demo(n_tickets=8, n_documents=8, home=tmp_path, shifted=4)
    assert set(result["contracts"]) == {"ticket-triage", "invoice-extraction", "invoice-header"}
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
    assert result["contracts"]["invoice-header"]["shifted_report"] is None  # no shifted documents yet
