"""Checks of an exported LoRA specialist: does llama.cpp answer like the torch model it came from, and how fast.

- parity: on test prompts, the torch model's greedy answer and llama.cpp's greedy answer from the
  exported GGUF (the merged file, or base + adapter; both unconstrained, the same prompt ids),
  compared in canonical form; the share that match;
- decode speed: tokens per second of the base model and of the exported specialist, alternated in
  one run on the same prompt, and their ratio.
"""

from __future__ import annotations

import time
from typing import Any

from smallfleet.constrain.outcome import canonical
from smallfleet.distill.train_lora import torch_greedy


def _llama_greedy(llm: Any, prompt: list[int], eos: int, max_new: int) -> list[int]:
    out: list[int] = []
    llm.reset()
    for token in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
        if token == eos or len(out) >= max_new:
            break
        out.append(token)
    return out


def export_parity(torch_model: Any, backend: Any, pairs: list[tuple[list[int], list[int]]], eos: int,
                  max_new: int) -> dict[str, Any]:
    llm = backend.llama
    torch_answers = torch_greedy(torch_model, pairs, eos, max_new)
    same = 0
    for (prompt, _), mine in zip(pairs, torch_answers, strict=True):
        theirs = _llama_greedy(llm, prompt, eos, max_new)
        same += canonical(llm.detokenize(theirs).decode(errors="replace")) == canonical(
            llm.detokenize(mine).decode(errors="replace"))
    llm.reset()
    return {"prompts": len(pairs), "match_rate": round(same / len(pairs), 4) if pairs else None}


def decode_speed(base: Any, adapted: Any, tokens: int = 64, rounds: int = 2) -> dict[str, Any]:
    prompt = base.llama.tokenize(b"Write a long story about a lighthouse keeper and the sea.", add_bos=True)
    rates: dict[str, list[float]] = {"base": [], "specialist": []}
    for _ in range(rounds):
        for name, backend in (("base", base), ("specialist", adapted)):
            llm = backend.llama
            llm.reset()
            llm.eval(prompt)
            started, n = time.perf_counter(), 0
            for _token in llm.generate(prompt, temp=0.0, top_k=1, reset=False):
                n += 1
                if n >= tokens:
                    break
            rates[name].append(n / (time.perf_counter() - started))
            llm.reset()
    base_rate, own_rate = max(rates["base"]), max(rates["specialist"])
    return {"base_tokens_per_s": round(base_rate, 1), "specialist_tokens_per_s": round(own_rate, 1),
            "ratio": round(own_rate / base_rate, 3)}
