"""The CLINC150 learning curve on a tiny slice: each retrain's figures are computed from real predictions."""

from __future__ import annotations

import pytest

from smallfleet.evals.clinc_curve import run_clinc_curve

pytestmark = pytest.mark.model


def test_the_curve_reports_each_retrain_on_the_same_test_items() -> None:
    result = run_clinc_curve(sizes=(300, 150), test_limit=60, target=0.9)
    assert result["test_items"] == 60 and [p["traces"] for p in result["curve"]] == [150, 300]
    for point in result["curve"]:
        assert point["train"] + point["dev"] == point["traces"] and point["dev"] > 0
        assert 0.0 <= point["local_share"] <= 1.0 and point["cost_reduction"] == point["local_share"]
        assert point["quality_loss_points"] == pytest.approx(
            100 * (result["all_teacher_accuracy"] - point["overall_accuracy"]), abs=0.02)
    small, large = result["curve"]
    assert large["classifier_accuracy"] > 1 / 151 * 5  # far above chance over 151 classes, from 300 requests
    assert large["classifier_accuracy"] >= small["classifier_accuracy"] - 0.1
