"""What a specialist's prompt length costs: training seconds per step and serving latency, per prompt mode.

A fine-tuned specialist does not need the zero-shot instructions; `Rung.prompt` picks what it sees:
`contract` (instructions, examples, constraint instructions, input), `input` (the constraint's
instructions and the input) or `bare` (the input alone; the grammar still enforces the shape). For
one contract of the reference demo (default: the agent step, whose tool list makes the constraint
instructions long), on the same requests and the same machine in one run:

- prompt tokens (mean) as the serving backend renders them;
- LoRA training seconds per step (batch 4, r16, the first `steps` steps of a real `train_lora` run;
  loading the base model excluded) and what 3 epochs over `examples` examples would take;
- serving latency (p50) of the embedded SmolLM2 answering constrained, greedy, with that prompt.

The answers' quality is not compared here (the zero-shot base is not the specialist); the demo and
`distill run` report the specialist's accuracy for the prompt it was trained on.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from smallfleet.errors import SmallfleetError

MODES = ("bare", "input", "contract")


def run_prompt_cost_bench(contract_name: str = "agent-step", steps: int = 4, requests: int = 6,
                          examples: int = 200) -> dict[str, Any]:
    from smallfleet.backends.base import SamplingParams
    from smallfleet.backends.embedded import embedded_gguf_path
    from smallfleet.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
    from smallfleet.contracts.spec import Rung
    from smallfleet.distill.dataset import Example
    from smallfleet.distill.train_lora import LoraOptions, encode, train_lora
    from smallfleet.evals.demo import demo_config, gold_reference
    from smallfleet.route.router import Contract
    from smallfleet.workload import agent_tools, documents, tickets

    config = demo_config("http://127.0.0.1:9", 0.95)
    spec = next((c for c in config.contracts if c.name == contract_name), None)
    if spec is None:
        raise SmallfleetError(f"no demo contract {contract_name!r}; known: {', '.join(c.name for c in config.contracts)}")
    contract = Contract.load(spec)
    items: list[Any] = {"agent-step": lambda: agent_tools.generate_agent_requests(64, seed=77),
                        "ticket-triage": lambda: tickets.generate_tickets(64, seed=77),
                        "invoice-extraction": lambda: documents.generate_documents(64, seed=77),
                        "invoice-header": lambda: [d.header() for d in documents.generate_documents(64, seed=77)],
                        }[contract_name]()
    train = [Example(f"x{i}", it.text, gold_reference(it), "label", 0.0) for i, it in enumerate(items)]
    base = embedded_gguf_path()
    backend = LlamaCppBackend("smollm2-135m", LlamaCppOptions(path=base, n_ctx=4096))
    params = SamplingParams(max_tokens=spec.max_tokens, temperature=0.0)
    out: dict[str, Any] = {"contract": contract_name, "model": "smollm2-135m", "batch_size": 4}
    try:
        for mode in MODES:
            rung = Rung(model="smollm2-135m", prompt=mode)  # type: ignore[arg-type]
            pairs = encode(backend, contract, train[:steps * 4], mode)
            with tempfile.TemporaryDirectory() as tmp:
                trained, model = train_lora(base, pairs, LoraOptions(epochs=1, prompt=mode), Path(tmp) / "a.gguf",
                                            Path(tmp) / "ckpt", pad_id=backend.llama.token_eos(), progress=False)
                del model
            latencies = []
            for item in items[-requests:]:
                started = time.perf_counter()
                asyncio.run(backend.generate(contract.messages(item.text, rung),
                                             SamplingParams(**{**params.__dict__,
                                                               "constraint_instructions": mode != "bare"}),
                                             contract.constraint))
                latencies.append((time.perf_counter() - started) * 1000)
            per_step = trained.seconds_per_step or 0.0
            out[mode] = {"mean_prompt_tokens": round(trained.mean_prompt_tokens, 1),
                         "train_seconds_per_step": per_step,
                         f"train_minutes_3_epochs_{examples}_examples": round(per_step * 3 * examples / 4 / 60, 1),
                         "serve_p50_ms": round(statistics.median(latencies), 1)}
    finally:
        asyncio.run(backend.aclose())
    return out
