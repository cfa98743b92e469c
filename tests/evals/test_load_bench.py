"""`smallfleet bench load`, short: Locust clients against a real gateway process and a fake upstream, counted."""

from __future__ import annotations

from smallfleet.evals.load import LoadOptions, run_load_bench


def test_a_short_load_run_is_counted_traced_and_measured() -> None:
    # 40 clients at 5 requests/s each into a gateway that sends at most 4 at once to a 50 ms upstream and lets
    # 8 wait (0.5 s at most): more than it can take, so some are refused with 429 and Retry-After.
    figures = run_load_bench(LoadOptions(users=40, duration_s=8, warmup_s=2, spawn_rate=40, pacing_s=0.2,
                                         concurrency=4, max_queue=8, queue_timeout_s=0.5))
    assert figures["requests"] > 100 and figures["server_errors"] == 0
    assert figures["answered_200"] > 0 and figures["answered_without_trace"] == 0
    assert figures["overload_429_with_retry_after"] > 0 and figures["overload_429_without_retry_after"] == 0
    assert figures["rss_samples"] >= 5 and figures["rss_mib"]["end"] > 0
