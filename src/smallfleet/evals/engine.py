"""Engine benchmark: our embedded backend versus raw llama-cpp-python, side by side in one run.

Both sides use the very same `llama_cpp.Llama` object (same weights, threads, context), greedy
decoding, the same chat prompts and the same token limit. The KV cache is reset before every
call so neither side benefits from the other's prefix. Calls alternate (raw, ours, ours, raw,
...) so drift in machine load hits both sides alike. Tokens/s = completion tokens / wall time
of the whole call (prompt evaluation included).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from smallfleet.backends.base import ChatMessage, SamplingParams
from smallfleet.backends.embedded import embedded_gguf_path
from smallfleet.backends.llamacpp import LlamaCppBackend, LlamaCppOptions

PROMPTS: tuple[str, ...] = (
    "Write a short paragraph about the history of the bicycle.",
    "Explain what a database index is to a new programmer.",
    "List five tips for writing clear emails.",
    "Describe the water cycle in simple terms.",
    "What are the benefits of regular exercise? Answer in a few sentences.",
    "Summarise the plot of a heist movie you would like to see.",
    "Give step-by-step instructions to make a cup of tea.",
    "Why is the sky blue? Explain briefly.",
)


@dataclass(frozen=True)
class EngineBench:
    """Figures of one engine benchmark run."""

    model: str
    prompts: int
    rounds: int
    max_tokens: int
    n_threads: int | None
    raw_tokens: int
    raw_seconds: float
    ours_tokens: int
    ours_seconds: float

    @property
    def raw_tokens_per_s(self) -> float:
        return self.raw_tokens / self.raw_seconds

    @property
    def ours_tokens_per_s(self) -> float:
        return self.ours_tokens / self.ours_seconds

    def as_dict(self) -> dict[str, object]:
        return {
            "benchmark": "engine",
            "model": self.model,
            "prompts": self.prompts,
            "rounds": self.rounds,
            "max_tokens": self.max_tokens,
            "n_threads": self.n_threads,
            "raw_llama_cpp_python": {"completion_tokens": self.raw_tokens, "seconds": round(self.raw_seconds, 3),
                                     "tokens_per_s": round(self.raw_tokens_per_s, 2)},
            "smallfleet": {"completion_tokens": self.ours_tokens, "seconds": round(self.ours_seconds, 3),
                           "tokens_per_s": round(self.ours_tokens_per_s, 2)},
            "ratio": round(self.ours_tokens_per_s / self.raw_tokens_per_s, 4),
            "target_ratio": 0.95,
        }


def run_engine_bench(max_tokens: int = 96, rounds: int = 2, n_threads: int | None = None,
                     prompts: tuple[str, ...] = PROMPTS, path: Path | None = None,
                     model: str = "smollm2-135m") -> EngineBench:
    backend = LlamaCppBackend(model, LlamaCppOptions(path=path or embedded_gguf_path(), n_ctx=2048,
                                                     n_threads=n_threads))
    llm = backend.llama
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)

    def raw(prompt: str) -> tuple[int, float]:
        llm.reset()
        t0 = time.perf_counter()
        out = llm.create_chat_completion(messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
                                         temperature=0.0)
        return out["usage"]["completion_tokens"], time.perf_counter() - t0

    async def ours(prompt: str) -> tuple[int, float]:
        llm.reset()
        t0 = time.perf_counter()
        gen = await backend.generate((ChatMessage("user", prompt),), params)
        return gen.completion_tokens, time.perf_counter() - t0

    async def run() -> EngineBench:
        raw(prompts[0])  # warm-up both paths once
        await ours(prompts[0])
        totals = {"raw": [0, 0.0], "ours": [0, 0.0]}
        for r in range(rounds):
            for i, prompt in enumerate(prompts):
                order = ("raw", "ours") if (i + r) % 2 == 0 else ("ours", "raw")
                for side in order:
                    n, dt = raw(prompt) if side == "raw" else await ours(prompt)
                    totals[side][0] += n
                    totals[side][1] += dt
        await backend.aclose()
        return EngineBench(model, len(prompts), rounds, max_tokens, n_threads,
                           int(totals["raw"][0]), totals["raw"][1], int(totals["ours"][0]), totals["ours"][1])

    return asyncio.run(run())
