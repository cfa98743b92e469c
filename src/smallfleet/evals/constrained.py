"""Constrained-decoding benchmark: JSON-schema-constrained versus unconstrained, same prompts, same run.

Both sides get the *same* prompt (the task plus the schema instructions in the system message)
on the same embedded model, greedy, with the KV cache reset before every call; only the token
mask differs. Calls alternate so machine noise hits both sides. Reported:
- decode tokens/s (tokens after the first, over the time after the first): what masking costs;
- end-to-end tokens/s (all completion tokens over the whole call, prompt evaluation included; the
  constrained answers are shorter, so the same prompt cost weighs more per token) and seconds per
  request;
- the same figures for llama.cpp's own GBNF grammar path on the same prompts (reference point);
- schema compile time (checks + llguidance grammar + matcher build, cold) p50/p99 over the suite;
- per-token mask time (compute + apply) p50/p99 during the constrained runs.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field

from smallfleet.backends.base import ChatMessage, Generation, SamplingParams
from smallfleet.backends.embedded import embedded_gguf_path
from smallfleet.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from smallfleet.constrain.compile import grammar_for
from smallfleet.constrain.spec import JsonSchemaConstraint
from smallfleet.stats import percentile
from smallfleet.evals.schema_suite import ALL_CASES, REALISTIC

BENCH_CASES = ("ticket_triage", "ticket_full", "invoice", "invoice_lines", "order_status", "contact_card",
               "webhook", "incident")


@dataclass
class Side:
    tokens: int = 0
    seconds: float = 0.0
    decode_tokens: int = 0
    decode_seconds: float = 0.0
    forced: int = 0
    requests: int = 0

    def add(self, completion_tokens: int, total_s: float, ttft_s: float, forced: int = 0) -> None:
        self.tokens += completion_tokens
        self.seconds += total_s
        self.decode_tokens += max(0, completion_tokens - 1)
        self.decode_seconds += max(0.0, total_s - ttft_s)
        self.forced += forced
        self.requests += 1

    def figures(self) -> dict[str, float]:
        return {"completion_tokens": self.tokens, "forced_tokens": self.forced,
                "tokens_per_s": round(self.tokens / self.seconds, 2),
                "decode_tokens_per_s": round(self.decode_tokens / self.decode_seconds, 2),
                "seconds_per_request": round(self.seconds / self.requests, 3)}


@dataclass
class Figures:
    sides: dict[str, Side] = field(default_factory=lambda: {k: Side() for k in ("unconstrained", "smallfleet",
                                                                                 "llama_cpp_gbnf")})
    mask_ms: list[float] = field(default_factory=list)


def compile_times_ms(tokenizer: object) -> list[float]:
    """Cold compile time of every enforceable suite schema: checks, grammar, matcher."""
    from llguidance import LLMatcher

    times = []
    for case in ALL_CASES:
        if case.expect != "valid":
            continue
        started = time.perf_counter()
        grammar = grammar_for(JsonSchemaConstraint(case.schema), "schema")
        LLMatcher(tokenizer, grammar, log_level=0)
        times.append((time.perf_counter() - started) * 1000)
    return times


def run_constrained_bench(max_tokens: int = 128, rounds: int = 2) -> dict[str, object]:
    import llama_cpp

    backend = LlamaCppBackend("smollm2-135m", LlamaCppOptions(path=embedded_gguf_path(), n_ctx=2048))
    llm = backend.llama
    cases = [c for c in REALISTIC if c.name in BENCH_CASES]
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
    figures = Figures()

    async def ours(messages: tuple[ChatMessage, ...], constraint: JsonSchemaConstraint | None) -> Generation:
        llm.reset()
        return await backend.generate(messages, params, constraint)

    def gbnf(messages: tuple[ChatMessage, ...], schema: dict) -> tuple[int, float, float]:
        grammar = llama_cpp.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        llm.reset()
        started = time.perf_counter()
        first: float | None = None
        n = 0
        for _ in llm.create_chat_completion(messages=[{"role": m.role, "content": m.content} for m in messages],
                                            grammar=grammar, temperature=0.0, max_tokens=max_tokens, stream=True):
            first = first or time.perf_counter()
            n += 1
        ended = time.perf_counter()
        return max(0, n - 2), ended - started, (first or ended) - started  # minus role and finish chunks

    async def run() -> None:
        for r in range(rounds):
            for i, case in enumerate(cases):
                constraint = JsonSchemaConstraint(case.schema, case.name)
                messages = (ChatMessage("system", constraint.instructions()), ChatMessage("user", case.task))
                order = ["unconstrained", "smallfleet", "llama_cpp_gbnf"]
                if (i + r) % 2:
                    order.reverse()
                for side in order:
                    if side == "llama_cpp_gbnf":
                        n, total, ttft = gbnf(messages, case.schema)
                        figures.sides[side].add(n, total, ttft)
                        continue
                    # The constrained call gets the bare task: the backend adds the same instructions itself.
                    gen = await (ours(messages, None) if side == "unconstrained"
                                 else ours((ChatMessage("user", case.task),), constraint))
                    forced = sum(lp.forced for lp in gen.logprobs)
                    figures.sides[side].add(gen.completion_tokens, gen.timings.total_s, gen.timings.ttft_s, forced)
                    figures.mask_ms.extend(gen.timings.mask_ms)
        await backend.aclose()

    asyncio.run(run())
    compile_ms = compile_times_ms(backend.tokenizer_bridge())
    sides = {k: v.figures() for k, v in figures.sides.items()}
    base = sides["unconstrained"]
    return {
        "benchmark": "constrained",
        "engine": "llguidance",
        "model": "smollm2-135m",
        "schemas": len(cases),
        "rounds": rounds,
        "max_tokens": max_tokens,
        **sides,
        "ratio_decode": round(sides["smallfleet"]["decode_tokens_per_s"] / base["decode_tokens_per_s"], 4),
        "ratio_end_to_end": round(sides["smallfleet"]["tokens_per_s"] / base["tokens_per_s"], 4),
        "gbnf_ratio_decode": round(sides["llama_cpp_gbnf"]["decode_tokens_per_s"] / base["decode_tokens_per_s"], 4),
        "target_ratio": 0.95,
        "compile_ms": {"schemas": len(compile_ms), "p50": round(percentile(compile_ms, 50), 3),
                       "p99": round(percentile(compile_ms, 99), 3), "max": round(max(compile_ms), 3)},
        "mask_ms_per_token": {"tokens": len(figures.mask_ms), "p50": round(percentile(figures.mask_ms, 50), 4),
                              "p99": round(percentile(figures.mask_ms, 99), 4),
                              "mean": round(statistics.fmean(figures.mask_ms), 4)},
    }
