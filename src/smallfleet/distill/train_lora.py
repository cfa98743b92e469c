"""Fine-tune a LoRA specialist on a contract's dataset, from the base model's own GGUF, on CPU (or CUDA).

Prompt parity: every training prompt is produced by the serving backend itself
(`LlamaCppBackend.render`: the GGUF's chat template, the rung's messages, the constraint's
instructions), so training and serving see the same token ids; the target is the reference written
as the constrained model writes it (`constrain.written`: schema key order, the model's own tool
format) followed by the end-of-turn token, and the loss covers the target tokens only.

The base weights come from the GGUF through transformers (`gguf_file=`, dequantised to float32; no
hub). Training is a plain AdamW loop with a fixed seed, a progress bar with ETA on stderr, a
checkpoint every `checkpoint_s` seconds (an interrupted run with the same data and settings resumes
from it), and a time cap after which it stops and keeps what it has learnt. The result is written as
a llama.cpp adapter GGUF (`specialists.lora_gguf`).
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from smallfleet.contracts.spec import Rung
from smallfleet.distill.dataset import Example
from smallfleet.route.router import Contract


@dataclass(frozen=True)
class LoraOptions:
    rank: int = 16
    alpha: int = 32
    learning_rate: float = 3e-4
    epochs: int = 3
    batch_size: int = 4
    max_minutes: float = 20.0
    seed: int = 0
    device: str = "cpu"
    prompt: str = "input"  # "input": the input + the constraint's instructions | "bare": the input alone (shortest)
    #                        | "contract": the full contract prompt
    checkpoint_s: float = 60.0


@dataclass
class TrainedLora:
    adapter: Path
    minutes: float
    steps: int
    planned_steps: int
    examples: int
    mean_prompt_tokens: float
    losses: list[float] = field(default_factory=list)
    stopped_by_time_cap: bool = False
    resumed_from_step: int = 0
    seconds_per_step: float | None = None  # training steps only (loading the base model excluded)


def encode(backend: Any, contract: Contract, examples: Sequence[Example], prompt: str) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, target ids) per example, rendered by the serving backend (prompt parity)."""
    from smallfleet.constrain.spec import ToolsConstraint
    from smallfleet.constrain.written import written_answer

    rung = Rung(model=backend.info.id, prompt=prompt)  # type: ignore[arg-type]
    llm = backend.llama
    # Tool tags are special tokens in formats that have them (Hermes); JSON and text never contain them.
    special = isinstance(contract.constraint, ToolsConstraint) and backend.tool_format.name == "hermes"
    out = []
    for e in examples:
        constraint = contract.for_text(e.input).constraint  # a grounded contract: this input's passage ids
        ids = backend.render(contract.messages(e.input, rung), constraint, instructions=prompt != "bare")
        text = written_answer(constraint, e.reference, backend.tool_format)
        target = llm.tokenize(text.encode(), add_bos=False, special=special) + [llm.token_eos()]
        out.append((list(ids), target))
    return out


def load_base(gguf: Path, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """The base model from its GGUF file (dequantised, float32) and the facts the adapter export needs."""
    import torch
    from transformers import AutoModelForCausalLM, GgufConfig
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32,
                                                 quantization_config=GgufConfig(dequantize=True))
    cfg = model.config
    facts = {"arch": "llama" if cfg.model_type == "llama" else cfg.model_type, "n_head": cfg.num_attention_heads,
             "n_head_kv": cfg.num_key_value_heads}
    return model.to(device), facts


def _key(pairs: list[tuple[list[int], list[int]]], options: LoraOptions, base: Path) -> str:
    digest = hashlib.sha256(json.dumps([pairs, asdict(options), str(base)]).encode())
    return digest.hexdigest()[:16]


def _batches(n: int, size: int, epoch: int, seed: int) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed * 1000 + epoch).shuffle(order)
    return [order[i:i + size] for i in range(0, n, size)]


def train_lora(base: Path, pairs: list[tuple[list[int], list[int]]], options: LoraOptions, out: Path,
               checkpoints: Path, pad_id: int, progress: bool = True) -> tuple[TrainedLora, Any]:
    """Train; write the adapter GGUF to `out`; return the figures and the trained (PEFT) torch model."""
    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from tqdm import tqdm

    from smallfleet.specialists.lora_gguf import TARGET_MODULES, write_adapter

    started = time.perf_counter()
    torch.manual_seed(options.seed)
    model, facts = load_base(base, options.device)
    model = get_peft_model(model, LoraConfig(r=options.rank, lora_alpha=options.alpha, lora_dropout=0.0,
                                             target_modules=TARGET_MODULES))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=options.learning_rate, weight_decay=0.0)
    plan = [(epoch, batch) for epoch in range(options.epochs)
            for batch in _batches(len(pairs), options.batch_size, epoch, options.seed)]
    checkpoint = checkpoints / _key(pairs, options, base) / "state.pt"
    step = 0
    if checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        set_peft_model_state_dict(model, state["lora"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
    resumed = step
    losses: list[float] = []
    last_save = time.perf_counter()
    stopped = False
    model.train()
    loop_started = time.perf_counter()
    bar = tqdm(total=len(plan), initial=step, desc="lora", unit="step", file=sys.stderr, disable=not progress)
    while step < len(plan):
        if (time.perf_counter() - started) / 60 > options.max_minutes:
            stopped = True
            break
        _, batch = plan[step]
        rows = [pairs[i][0] + pairs[i][1] for i in batch]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, i in enumerate(batch):
            prompt, target = pairs[i]
            row = prompt + target
            ids[j, :len(row)] = torch.tensor(row)
            mask[j, :len(row)] = 1
            labels[j, len(prompt):len(row)] = torch.tensor(target)  # loss on the answer tokens only
        loss = model(input_ids=ids.to(options.device), attention_mask=mask.to(options.device),
                     labels=labels.to(options.device)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(round(float(loss.detach()), 4))
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if time.perf_counter() - last_save > options.checkpoint_s and step < len(plan):
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"step": step, "lora": get_peft_model_state_dict(model),
                        "optimizer": optimizer.state_dict()}, checkpoint.with_suffix(".tmp"))
            checkpoint.with_suffix(".tmp").replace(checkpoint)
            last_save = time.perf_counter()
    bar.close()
    per_step = (time.perf_counter() - loop_started) / (step - resumed) if step > resumed else None
    model.eval()
    write_adapter(get_peft_model_state_dict(model), out, arch=facts["arch"], alpha=options.alpha,
                  n_head=facts["n_head"], n_head_kv=facts["n_head_kv"])
    if checkpoint.is_file():
        checkpoint.unlink()
    return TrainedLora(out, (time.perf_counter() - started) / 60, step, len(plan), len(pairs),
                       sum(len(p) for p, _ in pairs) / max(1, len(pairs)), losses, stopped, resumed,
                       round(per_step, 3) if per_step else None), model


def torch_greedy(model: Any, pairs: list[tuple[list[int], list[int]]], eos: int, max_new: int,
                 device: str = "cpu") -> list[list[int]]:
    """The trained torch model's own greedy answers (no constraint), for the export parity check."""
    import torch

    out = []
    with torch.no_grad():
        for prompt, _ in pairs:
            ids = torch.tensor([prompt], device=device)
            generated = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new,
                                       do_sample=False, eos_token_id=eos, pad_token_id=eos)
            new = generated[0, len(prompt):].tolist()
            out.append(new[:new.index(eos)] if eos in new else new)
    return out
