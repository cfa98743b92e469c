"""The canary run (`smallfleet bench guard`) on a small corpus: through a live gateway with keys, nothing planted
reaches the recording remote, the traces, the logs or the audit, and every answer comes back restored."""

from __future__ import annotations

from smallfleet.evals.guard_bench import PATHS, run_guard_bench


def test_no_canary_leaves_and_every_answer_is_restored() -> None:
    result = run_guard_bench(canaries=24, seed=17, latency_requests=2, eval_snippets=20)
    assert result["canaries"]["values"] >= 40 and len(result["canaries"]["by_category"]) == 11
    for path in PATHS:
        assert result["requests"][path] == {"sent": 24, "answered": 24, "restored": 24}, path
    assert result["remote_calls"] == 24 * 4  # four paths call it; the local_only contract (shadow runs on) never
    for where, leaks in result["leaks"].items():
        assert leaks["total"] == 0, (where, leaks)
    searched = result["bytes_searched"]
    assert min(searched.values()) > 1000  # the search had something to look at in every place
    assert result["restored_rate"] == 1.0 and result["added_latency"]["redact"]["requests"] == 2
