"""Does a distillation run slow serving? Serving latency with and without a LoRA training process beside it.

`distill watch` starts retraining in a child process at the lowest CPU priority (nice 19). This
bench measures what that costs the requests being served on the same machine:

- the load: a child process doing what `distill run` does while it trains: LoRA steps (peft, AdamW)
  on the embedded SmolLM2, loaded from its GGUF, on a fixed batch, until it is stopped;
- the requests: the ticket-triage contract (JSON schema, constrained) on the embedded SmolLM2, greedy,
  as the router would send them;
- phases, interleaved in blocks so machine drift hits each alike: `idle` (the child is paused with
  SIGSTOP), `nice19` (the child runs at nice 19, as `distill watch` starts it) and, where the OS allows
  raising its priority back, `nice0` (the same child at normal priority: what not using nice would cost).

The figures are median and p90 latency per phase and their ratio to idle, plus the CPU the trainer
got in each phase (in cores: 1.0 = one core all the time) and the training steps it completed.

Run the child alone with `python -m smallfleet.evals.training_load` (it prints one line per step).
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

CHILD_BATCH = 4
CHILD_TOKENS = 256


def _child() -> None:
    """Train LoRA steps on a fixed batch forever, printing `step N` after each (the load process)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from smallfleet.backends.embedded import embedded_gguf_path
    from smallfleet.distill.train_lora import load_base
    from smallfleet.specialists.lora_gguf import TARGET_MODULES

    torch.manual_seed(0)
    model, _ = load_base(embedded_gguf_path())
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=TARGET_MODULES))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-4)
    ids = torch.randint(0, 49152, (CHILD_BATCH, CHILD_TOKENS))
    print("ready", flush=True)
    step = 0
    while True:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        step += 1
        print(f"step {step}", flush=True)


class _Load:
    """The training child: started at nice 19, paused and resumed by signals, its steps counted."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "smallfleet.evals.training_load"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, preexec_fn=lambda: os.nice(19))
        assert self.proc.stdout is not None
        self.steps = 0
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError("the training load process did not start")
        os.set_blocking(self.proc.stdout.fileno(), False)

    def count(self) -> int:
        """Steps made since the last call (reads what the child printed, without blocking)."""
        assert self.proc.stdout is not None
        chunks = []
        while True:
            try:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        made = b"".join(chunks).count(b"step ")
        self.steps += made
        return made

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self, nice: int) -> bool:
        """Run the child at `nice` (every thread: on Linux a priority belongs to a thread, and torch's worker
        threads were started at nice 19); False when the OS refuses that priority."""
        try:
            for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
                os.setpriority(os.PRIO_PROCESS, int(tid), nice)
        except PermissionError:
            return False
        except FileNotFoundError:  # no /proc: the process only
            os.setpriority(os.PRIO_PROCESS, self.proc.pid, nice)
        self.proc.send_signal(signal.SIGCONT)
        return True

    def cpu_seconds(self) -> float:
        """CPU time the child has used so far (all threads), or 0 where /proc is missing."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
        self.proc.kill()
        self.proc.wait()


def _requests(n: int) -> list[str]:
    from smallfleet.workload import tickets

    return [t.text for t in tickets.generate_tickets(n, seed=4242)]


async def _serve(backend: Any, contract: Any, texts: list[str]) -> list[float]:
    from smallfleet.backends.base import SamplingParams

    params = SamplingParams(max_tokens=contract.spec.max_tokens, temperature=0.0)
    out = []
    for text in texts:
        started = time.perf_counter()
        await backend.generate(contract.messages(text), params, contract.constraint)
        out.append((time.perf_counter() - started) * 1000)
    return out


def _summary(latencies: list[float], idle: list[float] | None) -> dict[str, Any]:
    ordered = sorted(latencies)
    p50, p90 = statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))]
    figures: dict[str, Any] = {"requests": len(ordered), "p50_ms": round(p50, 1), "p90_ms": round(p90, 1)}
    if idle:
        figures["p50_vs_idle"] = round(p50 / statistics.median(idle), 3)
    return figures


def run_training_load_bench(blocks: int = 3, per_block: int = 16) -> dict[str, Any]:
    """Serve `per_block` requests per phase per block, phases interleaved, `blocks` times."""
    from smallfleet.backends.embedded import embedded_gguf_path
    from smallfleet.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
    from smallfleet.contracts.spec import ContractSpec
    from smallfleet.route.router import Contract
    from smallfleet.workload import tickets

    spec = ContractSpec(name="ticket-triage", instructions=tickets.INSTRUCTIONS, max_tokens=96,
                        output={"json_schema": tickets.SCHEMA}, ladder=["smollm2-135m"])
    contract = Contract.load(spec)
    backend = LlamaCppBackend("smollm2-135m", LlamaCppOptions(path=embedded_gguf_path(), n_ctx=2048))
    texts = _requests(blocks * per_block)
    latencies: dict[str, list[float]] = {"idle": [], "nice19": [], "nice0": []}
    steps = {k: 0 for k in latencies}
    trainer_cpu = {k: 0.0 for k in latencies}
    seconds = {k: 0.0 for k in latencies}
    load = _Load()
    refused: list[str] = []

    async def measure() -> None:
        await _serve(backend, contract, texts[:2])  # warm: grammar compiled, weights paged in
        for block in range(blocks):
            chunk = texts[block * per_block:(block + 1) * per_block]
            for phase in ("idle", "nice19", "nice0"):
                if phase == "idle":
                    load.pause()
                elif not load.resume(19 if phase == "nice19" else 0):
                    refused.append(phase)
                    continue
                await asyncio.sleep(1.0)  # let the scheduler settle with the new priority
                load.count()
                started, cpu = time.perf_counter(), load.cpu_seconds()
                latencies[phase] += await _serve(backend, contract, chunk)
                seconds[phase] += time.perf_counter() - started
                trainer_cpu[phase] += load.cpu_seconds() - cpu
                steps[phase] += load.count()
        await backend.aclose()

    try:
        asyncio.run(measure())
    finally:
        load.stop()
    idle = latencies["idle"]
    result: dict[str, Any] = {"load": f"LoRA r16 training on SmolLM2-135M, batch {CHILD_BATCH}x{CHILD_TOKENS} tokens",
                              "requests": "ticket-triage on SmolLM2-135M, JSON-schema constrained, greedy",
                              "cpu_count": os.cpu_count()}
    for phase, values in latencies.items():
        if values:
            result[phase] = {**_summary(values, None if phase == "idle" else idle),
                             "trainer_cpu_share": round(trainer_cpu[phase] / seconds[phase], 3),
                             "training_steps_per_min": round(60 * steps[phase] / seconds[phase], 2)}
    if "nice0" in refused:
        result["nice0"] = "not measured: raising the child's priority back to 0 needs privileges"
    return result


if __name__ == "__main__":
    _child()
