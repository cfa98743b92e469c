"""The tool-calling suite: its scoring, and every call the real model makes is well-formed."""

from __future__ import annotations

from collections import Counter

from smallfleet.evals.tool_run import run_tool_suite, summarise_tools
from smallfleet.evals.tool_suite import ALL_TOOL_CASES, TOOLS, Expected, ToolCase, score


def test_suite_has_sixty_cases_in_four_categories() -> None:
    counts = Counter(c.category for c in ALL_TOOL_CASES)
    assert len(ALL_TOOL_CASES) >= 60 and set(counts) == {"single", "choose", "parallel", "irrelevant"}
    assert min(counts.values()) >= 15
    assert all(t in TOOLS for c in ALL_TOOL_CASES for t in c.tools)
    assert all(e.name in c.tools for c in ALL_TOOL_CASES for e in c.expected)
    assert all(len(c.expected) == 2 for c in ALL_TOOL_CASES if c.category == "parallel")


def test_scoring_compares_names_and_expected_arguments() -> None:
    case = ToolCase("x", "single", "r", ("get_weather",), (Expected("get_weather", {"city": "Paris"}),))
    assert score(case, [("get_weather", {"city": " paris ", "unit": "celsius"})])
    assert not score(case, [("get_weather", {"city": "Lyon"})])
    assert not score(case, [("get_time", {"city": "Paris"})])
    assert not score(case, [])
    pair = ToolCase("p", "parallel", "r", ("a", "b"), (Expected("a", {"n": 1}), Expected("b", {})))
    assert score(pair, [("b", {}), ("a", {"n": 1.0})])
    assert not score(pair, [("a", {"n": 1})])
    none = ToolCase("i", "irrelevant", "r", ("a",))
    assert score(none, []) and not score(none, [("a", {})])


def test_every_call_the_real_model_makes_is_valid(embedded) -> None:
    cases = [c for c in ALL_TOOL_CASES if c.category in ("single", "choose")]
    results = run_tool_suite(embedded, cases, max_tokens=64, modes=("required",))
    summary = summarise_tools(results)
    assert summary["invalid_calls"] == 0
    assert all(r.calls for r in results if r.finish_reason == "stop")  # required: a call, always


def test_the_qwen_rung_calls_tools_in_auto_mode(qwen05) -> None:
    """Auto mode on the 0.5B rung: it decides to call when a tool fits (0% on the 135M model), never invalidly."""
    cases = [c for c in ALL_TOOL_CASES if c.category in ("single", "irrelevant")][::3]
    results = run_tool_suite(qwen05, cases, max_tokens=96, modes=("auto",))
    summary = summarise_tools(results)
    assert summary["invalid_calls"] == 0
    called = [r for r in results if r.category == "single" and r.calls]
    assert len(called) >= 3, summary  # it does call tools in auto mode
    assert summary["auto"]["single"]["right_tools"] >= 0.6, summary
