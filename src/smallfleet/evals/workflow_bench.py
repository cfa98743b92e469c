"""`smallfleet bench workflow`: a 20-hop support workflow on the local fleet, end to end, and where its time goes.

The workflow (`support_workflow`) triages a ticket with three contracts, looks up the customer, orders,
SLA, help article and refund policy with tools, asks the model for sentiment, refund intent, the next
action (a contract), escalation team (only when escalating: a branch), language, a summary, a draft
reply, its tone, tags (JSON) and whether to send it; tools check the draft and compute a priority.
Steps with a closed answer are constrained (a choice or a small JSON schema) and short. Every prompt
(contract inputs included: their rungs use the `bare` prompt) is the ticket first and the question
last, without the constraint's instructions in a system message up front (the grammar enforces the
answer; the question names the options), so consecutive hops share the ticket's prefix and llama.cpp
reuses its KV cache: each hop evaluates only its question.

Each model runs the same tickets (after one warm-up run) in one process, with the real router,
constraints and SQLite tracing. Reported per model: p50 / p95 seconds per run, the mean split of a run
(prompt evaluation, decoding, constraint masks, tools, the rest: routing, templates, tracing), tokens,
and quality: category, urgency and product (the three contract hops) against the tickets' gold labels.
With `train_tickets`, the three triage contracts are also answered by classifier specialists (issue 8's
recipe) trained on other gold-labelled tickets, in the same run: what distillation buys a workflow.
The prompt layout is measured too, same run: the question first (every hop evaluates its whole prompt)
against the ticket first.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from smallfleet.stats import percentile
from smallfleet.workload.tickets import CATEGORIES, PRODUCTS, URGENCIES

SUPPORT = "smallfleet.workload.support"
ACTIONS = ["refund", "replace", "troubleshoot", "answer", "escalate"]
TAGS = ["refund", "bug", "login", "delivery", "invoice", "hardware", "cancel", "urgent", "praise", "other"]


def _ask(layout: str, question: str) -> str:
    """A model hop's prompt: the ticket first (a prefix shared by every hop) or the question first."""
    return f"Ticket: {{input}}\n\n{question}" if layout == "shared-prefix" else f"{question}\n\nTicket: {{input}}"


def support_workflow(model: str, layout: str = "shared-prefix") -> dict[str, Any]:
    """The 20-hop workflow, as it would be written in a fleet file (contracts are `ticket-*` and `next-action`)."""
    def hop(step: str, question: str, output: dict[str, Any] | None = None, max_tokens: int = 8,
            **extra: Any) -> dict[str, Any]:
        return {"id": step, "model": model, "prompt": _ask(layout, question), "max_tokens": max_tokens,
                "instructions": False, **({"output": output} if output else {}), **extra}

    def tool(step: str, name: str, **args: Any) -> dict[str, Any]:
        return {"id": step, "tool": f"{SUPPORT}:{name}", "args": args}

    steps = [
        {"id": "category", "contract": "ticket-category",
         "input": _ask(layout, f"Which category is it: {', '.join(CATEGORIES)}?")},
        {"id": "urgency", "contract": "ticket-urgency", "input": _ask(layout, "How urgent is it: low, medium or high?")},
        {"id": "product", "contract": "ticket-product",
         "input": _ask(layout, f"Which product is it about: {', '.join(PRODUCTS)}?")},
        tool("customer", "lookup_customer", text="{input}"),
        tool("orders", "lookup_orders", customer_id="{customer.customer_id}"),
        tool("sla", "sla_hours", urgency="{urgency}", plan="{customer.plan}"),
        tool("article", "kb_search", category="{category}", product="{product}"),
        hop("sentiment", "Is the customer's mood positive, neutral or negative?",
            {"choice": ["positive", "neutral", "negative"]}),
        hop("wants-refund", "Does the customer ask for their money back? yes or no.", {"choice": ["yes", "no"]}),
        tool("policy", "refund_policy", plan="{customer.plan}", category="{category}"),
        {"id": "action", "contract": "next-action",
         "input": _ask(layout, "Category: {category}. Refund allowed: {policy.refund_allowed}. Next action: "
                               f"{', '.join(ACTIONS)}?")},
        hop("team", "Which team takes it: billing-desk, tech-support, logistics or account-security?",
            {"choice": ["billing-desk", "tech-support", "logistics", "account-security"]},
            when={"action": "escalate"}),
        tool("priority", "priority", urgency="{urgency}", sentiment="{sentiment}", plan="{customer.plan}"),
        hop("language", "Which language is the ticket written in: en, de, fr or es?",
            {"choice": ["en", "de", "fr", "es"]}),
        hop("summary", "Summarise the ticket in one short sentence.", max_tokens=24),
        hop("draft", "Write a short, polite reply to the customer. Next step: {action}. Help article: "
                     "{article.title}.", max_tokens=48),
        tool("checks", "reply_checks", reply="{draft}"),
        hop("tone", "Draft reply: {draft}\nIs this reply polite or impolite?", {"choice": ["polite", "impolite"]}),
        hop("tags", "Pick up to two tags for the ticket.", {"json_schema": {
            "type": "object", "properties": {"tags": {"type": "array", "items": {"enum": TAGS}, "maxItems": 2}},
            "required": ["tags"], "additionalProperties": False}}, max_tokens=24),
        hop("route", "Reply checks: {checks}. Send the reply now or send it to review?",
            {"choice": ["send", "review"]}),
    ]
    return {"name": f"support-{layout}", "steps": steps,
            "output": '{"category": "{category}", "urgency": "{urgency}", "product": "{product}", '
                      '"action": "{action}", "route": "{route}"}'}


SPECS = [
    ("ticket-category", "Classify the support ticket into one category.", list(CATEGORIES), "category"),
    ("ticket-urgency", "How urgent is the support ticket?", list(URGENCIES), "urgency"),
    ("ticket-product", "Which product is the support ticket about?", list(PRODUCTS), "product"),
    ("next-action", "Choose the next action for the support ticket.", ACTIONS, None),
]


def _contracts(model: str, specialists: dict[str, str] | None = None) -> dict[str, Any]:
    """The workflow's contracts on `model`; with `specialists` (contract -> model id), those contracts are answered
    by that model (a trained classifier) instead."""
    from smallfleet.contracts.spec import ContractSpec
    from smallfleet.route.router import Contract

    # `bare` rungs: the question is in the input (see `support_workflow`), so the prompt is the ticket first and
    # the question last, and consecutive hops share the ticket's KV cache; the grammar still enforces the choice.
    return {name: Contract.load(ContractSpec(
        name=name, instructions=instructions, output={"choice": options}, quality_target=0.5, max_tokens=8,
        ladder=[{"model": (specialists or {}).get(name, model), "prompt": "bare"}]))
        for name, instructions, options, _ in SPECS}


def train_specialists(tickets: list[Any], layout: str, out: Path) -> tuple[list[Any], dict[str, Any]]:
    """Classifier specialists (issue 8's recipe: MiniLM embeddings + hashed n-grams + logistic regression) for the
    three triage contracts, trained on gold-labelled tickets that the benchmark never runs, on exactly the input
    the contract hop sends (the ticket and its question)."""
    from smallfleet.backends.base import ModelInfo
    from smallfleet.backends.classifier import ClassifierBackend
    from smallfleet.constrain.spec import ChoiceConstraint
    from smallfleet.embeddings import Encoder
    from smallfleet.specialists.classifier import EmbeddingClassifier, layout_of
    from smallfleet.workflows.template import render

    encoder = Encoder()
    steps = {s["id"]: s for s in support_workflow("m", layout)["steps"]}
    backends, facts = [], {}
    started = time.perf_counter()
    for name, _, options, field in SPECS:
        if field is None:
            continue
        texts = [render(steps[field]["input"], {"input": t.text}) for t in tickets]
        shape = layout_of(ChoiceConstraint(options=tuple(options)))
        assert shape is not None
        answers = [shape.parse(t.label[field]) for t in tickets]
        model = EmbeddingClassifier(shape).fit(texts, encoder.encode(texts), answers)
        model.save(out / f"{name}.pkl")
        backends.append(ClassifierBackend(ModelInfo(id=f"{name}-classifier", location="local", context_window=512),
                                          out / f"{name}.pkl", encoder))
    facts["train_tickets"] = len(tickets)
    facts["train_seconds"] = round(time.perf_counter() - started, 1)
    return backends, facts


def run_workflow_bench(runs: int = 10, large_runs: int = 3, large: str | None = None,
                       seed: int = 7, train_tickets: int = 600) -> dict[str, Any]:
    from smallfleet.backends.embedded import embedded_gguf_path
    from smallfleet.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
    from smallfleet.config.settings import Settings
    from smallfleet.fleet import Fleet
    from smallfleet.models.store import ModelStore
    from smallfleet.route.router import Router
    from smallfleet.trace.sqlite import SQLiteTraceStore
    from smallfleet.workflows.run import WorkflowRunner
    from smallfleet.workflows.spec import WorkflowSpec
    from smallfleet.workload.tickets import generate_tickets

    models = {"smollm2-135m": embedded_gguf_path()}
    installed = ModelStore(Settings.from_env().home)
    for name in [large] if large else ["qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct"]:
        try:
            models[name] = installed.path_of(name)
            break
        except Exception:  # not installed: the comparison is reported as skipped
            continue
    tickets = generate_tickets(max(runs, large_runs) + 1, seed)
    backends = [LlamaCppBackend(name, LlamaCppOptions(path=path, n_ctx=2048)) for name, path in models.items()]
    report: dict[str, Any] = {"hops": len(support_workflow("m")["steps"]), "runs": runs}
    with tempfile.TemporaryDirectory(prefix="smallfleet-workflow-bench-") as tmp:
        classifiers: list[Any] = []
        if train_tickets:
            train = generate_tickets(train_tickets, seed + 1000)  # another seed: none of the benchmark's tickets
            classifiers, report["specialists"] = train_specialists(train, "shared-prefix", Path(tmp) / "specialists")
        fleet = Fleet.of_backends(backends + classifiers)
        store = SQLiteTraceStore(Path(tmp) / "traces.db")

        async def record(trace: Any) -> None:
            store.append(trace)

        async def measure(model: str, layout: str, n: int, specialists: bool = False) -> dict[str, Any]:
            routes = {name: f"{name}-classifier" for name, *_ in SPECS[:3]} if specialists else None
            runner = WorkflowRunner(Router(fleet, _contracts(model, routes)), record)
            spec = WorkflowSpec.model_validate(support_workflow(model, layout))
            await runner.run(spec, tickets[-1].text)  # warm-up: first-use costs (grammars, caches) stay out
            results = [await runner.run(spec, t.text) for t in tickets[:n]]
            return _summary(results, tickets[:n])

        async def main() -> None:
            small = "smollm2-135m"
            report[small] = await measure(small, "shared-prefix", runs)
            report[f"{small} (question first)"] = await measure(small, "question-first", runs)
            if classifiers:
                report[f"{small} + triage specialists"] = await measure(small, "shared-prefix", runs, specialists=True)
            big = next((m for m in models if m != small), None)
            report["largest_local"] = big or "none installed (smallfleet models pull qwen2.5-coder-1.5b-instruct)"
            if big is not None and large_runs:
                report[big] = await measure(big, "shared-prefix", large_runs)
            await fleet.aclose()

        asyncio.run(main())
        store.close()
    return report


def _summary(results: list[Any], tickets: list[Any]) -> dict[str, Any]:
    seconds = [r.latency_ms / 1000 for r in results]
    ok = [r for r in results if r.status == "ok"]
    breakdowns = [r.breakdown_ms() for r in results]
    mean_split = {k: round(statistics.fmean(b[k] for b in breakdowns), 1) for k in breakdowns[0]}
    right = {field: sum(1 for r, t in zip(results, tickets, strict=True)
                        if r.status == "ok" and isinstance(r.output, dict) and r.output.get(field) == t.label[field])
             for field in ("category", "urgency", "product")}
    return {
        "runs": len(results), "completed": len(ok),
        "p50_s": round(percentile(seconds, 50), 2), "p95_s": round(percentile(seconds, 95), 2),
        "mean_s": round(statistics.fmean(seconds), 2),
        "mean_split_ms": mean_split,
        "hops_run": round(statistics.fmean(sum(h.status == "ok" for h in r.hops) for r in results), 1),
        "tokens_per_run": {"prompt": round(statistics.fmean(sum(h.prompt_tokens for h in r.hops) for r in results)),
                           "completion": round(statistics.fmean(sum(h.completion_tokens for h in r.hops)
                                                                for r in results))},
        "accuracy": {field: round(n / len(results), 3) for field, n in right.items()},
        "errors": [r.error for r in results if r.status != "ok"][:3],
        "example": ok[0].output if ok else None,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
