"""Run the JSON Schema suite through a backend and check every output with `jsonschema`.

Each case is asked through the same path the gateway uses (the backend with a
`JsonSchemaConstraint`), greedy, with a token limit. Outcomes per case:
- `valid`: complete answer, validates;
- `invalid`: complete answer that does NOT validate (must never happen for a local model);
- `cut`: the token limit ended the answer first; reported as `finish_reason: length`, never as valid;
- `refused`: the schema was refused up front with a 400 naming the problem;
- `error`: anything else.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from smallfleet.backends.base import Backend, ChatMessage, SamplingParams
from smallfleet.constrain.outcome import schema_problem, settle
from smallfleet.constrain.spec import JsonSchemaConstraint
from smallfleet.errors import InvalidRequest, SmallfleetError
from smallfleet.evals.schema_suite import SchemaCase


@dataclass(frozen=True)
class CaseResult:
    case: str
    expect: str
    status: str  # valid | invalid | cut | refused | error
    detail: str
    tokens: int
    seconds: float
    output: str
    steered: bool = False  # the loop guard stepped in


async def run_case(backend: Backend, case: SchemaCase, max_tokens: int) -> CaseResult:
    started = time.perf_counter()
    constraint = JsonSchemaConstraint(schema=case.schema, name=case.name)
    try:
        gen = await backend.generate((ChatMessage("user", case.task),),
                                     SamplingParams(max_tokens=max_tokens, temperature=0.0), constraint)
    except InvalidRequest as exc:
        return CaseResult(case.name, case.expect, "refused", exc.message, 0, time.perf_counter() - started, "")
    except SmallfleetError as exc:
        return CaseResult(case.name, case.expect, "error", exc.message, 0, time.perf_counter() - started, "")
    elapsed = time.perf_counter() - started
    if gen.finish_reason == "length":
        outcome = settle(constraint, gen.text, gen.finish_reason)
        status = "cut" if not outcome.valid else "invalid"  # a cut answer must never pass as valid
        return CaseResult(case.name, case.expect, status, outcome.problem or "", gen.completion_tokens, elapsed,
                          gen.text, gen.loop_steers > 0)
    try:
        problem = schema_problem(json.loads(gen.text), case.schema)
    except ValueError as exc:
        problem = f"not JSON: {exc}"
    return CaseResult(case.name, case.expect, "valid" if problem is None else "invalid", problem or "",
                      gen.completion_tokens, elapsed, gen.text, gen.loop_steers > 0)


def run_suite(backend: Backend, cases: list[SchemaCase], max_tokens: int = 256) -> list[CaseResult]:
    async def run() -> list[CaseResult]:
        return [await run_case(backend, c, max_tokens) for c in cases]

    return asyncio.run(run())


def summarise(results: list[CaseResult]) -> dict[str, object]:
    """Counts per status, for the cases expected to generate and those expected to be refused."""
    gen = [r for r in results if r.expect == "valid"]
    ref = [r for r in results if r.expect == "refused"]

    def count(rs: list[CaseResult], status: str) -> int:
        return sum(r.status == status for r in rs)

    complete = count(gen, "valid") + count(gen, "invalid")
    return {
        "schemas": len(results),
        "generated": {s: count(gen, s) for s in ("valid", "invalid", "cut", "refused", "error")},
        "expected_refusals": {"refused": count(ref, "refused"), "not_refused": len(ref) - count(ref, "refused")},
        "validity_of_complete_outputs": round(count(gen, "valid") / complete, 4) if complete else None,
        "completion_rate": round(complete / len(gen), 4) if gen else None,
        "steered_by_loop_guard": {s: sum(r.steered and r.status == s for r in gen) for s in ("valid", "invalid", "cut")},
        "tokens": sum(r.tokens for r in results),
        "seconds": round(sum(r.seconds for r in results), 1),
        # every failure by name: an invalid complete answer from a local model is a bug to fix
        "not_valid": [{"case": r.case, "status": r.status, "problem": r.detail[:200], "output": r.output[:160]}
                      for r in gen if r.status in ("invalid", "error")],
    }


def compare(off: list[CaseResult], on: list[CaseResult]) -> dict[str, object]:
    """The suite without and with the loop guard, side by side: counts and every case whose status changed."""
    changed = [{"case": a.case, "without": a.status, "with": b.status, "tokens": [a.tokens, b.tokens],
                "output_with": b.output[:160]}
               for a, b in zip(off, on, strict=True) if a.status != b.status]
    return {"without_loop_guard": summarise(off), "with_loop_guard": summarise(on), "changed": changed}
