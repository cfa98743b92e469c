"""Run the tool-calling suite through a backend; report validity and accuracy per category.

Every case runs with `tool_choice: auto` (the model decides between text and calls); the cases
that need a call also run with `tool_choice: required`, which shows what constrained decoding
alone buys a small model (a well-formed call is guaranteed; picking the right one is not).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass

from smallfleet.backends.base import Backend, ChatMessage, SamplingParams
from smallfleet.constrain.outcome import settle
from smallfleet.constrain.spec import ToolMode, ToolsConstraint
from smallfleet.evals.tool_suite import TOOLS, ToolCase, score


@dataclass(frozen=True)
class ToolResult:
    case: str
    category: str
    mode: str
    valid: bool
    correct: bool
    name_correct: bool
    finish_reason: str
    calls: list[tuple[str, dict]]
    text: str
    seconds: float


async def run_tool_case(backend: Backend, case: ToolCase, mode: ToolMode, max_tokens: int) -> ToolResult:
    constraint = ToolsConstraint(tools=tuple(TOOLS[t] for t in case.tools), mode=mode, parallel=True)
    started = time.perf_counter()
    gen = await backend.generate((ChatMessage("user", case.request),),
                                 SamplingParams(max_tokens=max_tokens, temperature=0.0), constraint)
    outcome = settle(constraint, gen.text, gen.finish_reason, gen.tool_calls)
    calls = [(c.name, json.loads(c.arguments)) for c in outcome.tool_calls]
    names_ok = sorted(n for n, _ in calls) == sorted(e.name for e in case.expected)
    # A cut answer is never correct, except that a long text reply to an irrelevant request is still no call.
    complete = gen.finish_reason != "length" or case.category == "irrelevant"
    return ToolResult(case.name, case.category, mode, outcome.valid or gen.finish_reason == "length",
                      score(case, calls) and complete, names_ok, gen.finish_reason, calls,
                      gen.text, time.perf_counter() - started)


def run_tool_suite(backend: Backend, cases: list[ToolCase], max_tokens: int = 160,
                   modes: tuple[ToolMode, ...] = ("auto", "required")) -> list[ToolResult]:
    async def run() -> list[ToolResult]:
        results = []
        for mode in modes:
            for case in cases:
                if mode == "required" and case.category == "irrelevant":
                    continue
                results.append(await run_tool_case(backend, case, mode, max_tokens))
        return results

    return asyncio.run(run())


def summarise_tools(results: list[ToolResult]) -> dict[str, object]:
    table: dict[str, dict[str, list[ToolResult]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        table[r.mode][r.category].append(r)
    out: dict[str, object] = {"cases": len({r.case for r in results}), "runs": len(results),
                              "invalid_calls": sum(not r.valid for r in results),
                              "cut_by_token_limit": sum(r.finish_reason == "length" for r in results)}
    for mode, cats in table.items():
        out[mode] = {cat: {"cases": len(rs), "accuracy": round(sum(r.correct for r in rs) / len(rs), 3),
                           "right_tools": round(sum(r.name_correct for r in rs) / len(rs), 3)}
                     for cat, rs in sorted(cats.items())}
    return out
