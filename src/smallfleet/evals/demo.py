"""`smallfleet demo`: the reference workload through a ladder of local models, then the teacher.

The ladder is `[each local model..., teacher]` (default: the embedded SmolLM2 alone, then the
teacher). The teacher is the SIMULATED stand-in (`smallfleet.sim.teacher`), served on loopback as an
OpenAI-compatible remote model with a price; nothing leaves the machine. Two phases per contract:
1. calibration split: every item runs on every rung (`shadow`), gold labels are attached, and each
   local rung's threshold is chosen (`calibrate_rungs`, as `smallfleet calibrate` does) so that
   the answers it accepts agree with the gold label at the contract's quality target;
2. held-out split: items are routed normally with the calibrated thresholds; the report compares
   the result with sending everything to the teacher, overall and per rung.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from smallfleet.config.fleet import FleetConfig, LlamaCppModel, OpenAIModel
from smallfleet.config.settings import Settings
from smallfleet.contracts.spec import ContractSpec
from smallfleet.route.calibrate import calibrate_rungs, installed_rules, samples_from
from smallfleet.route.report import report
from smallfleet.route.thresholds import ThresholdStore
from smallfleet.route.predictor import TextPredictor, evaluate_predictor
from smallfleet.promotion import PREDICTOR_SKIP_BELOW, predictor_path
from smallfleet.runtime import Runtime, open_runtime
from smallfleet.sim.serve import serve_in_thread
from smallfleet.sim.teacher import AgentOracle, TeacherOracle, agent_reference, reference_labels, teacher_app
from smallfleet.trace.store import TraceQuery
from smallfleet.workload import agent_tools, documents, tickets

TEACHER_PRICE = {"price_per_1k_input": 0.0025, "price_per_1k_output": 0.01}  # USD, a hosted mid-size model


def _examples(items: list[Any]) -> list[dict[str, str]]:
    return [{"input": i.text, "output": canonical_label(i.label)} for i in items]


def default_local_models() -> list[LlamaCppModel]:
    """The embedded SmolLM2-135M, alone."""
    return [LlamaCppModel(kind="llamacpp", id="smollm2-135m", n_ctx=2048)]


def demo_config(teacher_url: str, target: float, shots: int = 3,
                local_models: list[LlamaCppModel] | None = None, shadow_rate: float = 0.0) -> FleetConfig:
    """Three contracts over [local models..., teacher]; few-shot examples come from another seed than the workload."""
    local = local_models if local_models is not None else default_local_models()
    if not local:
        raise ValueError("the demo ladder needs at least one local model")
    ladder = [{"model": m.id} for m in local] + [{"model": "teacher", "retries": 2, "timeout_s": 30}]
    example_docs = documents.generate_documents(shots, seed=1002)
    examples = {"ticket-triage": _examples(tickets.generate_tickets(shots, seed=1001)),
                "invoice-extraction": _examples(example_docs),
                "invoice-header": _examples([d.header() for d in example_docs])}

    def contract(name: str, instructions: str, schema: dict) -> ContractSpec:
        return ContractSpec(name=name, instructions=instructions, output={"json_schema": schema},
                            quality_target=target, max_tokens=96, examples=examples[name],
                            shadow_rate=shadow_rate, ladder=ladder)

    # The agent step: ten tools, `tool_choice: auto` (some requests need no tool); no few-shot examples.
    agent = ContractSpec(name="agent-step", instructions=agent_tools.INSTRUCTIONS,
                         output=agent_tools.agent_contract_output("auto"), quality_target=target, max_tokens=128,
                         shadow_rate=shadow_rate, ladder=ladder)
    return FleetConfig(
        models=[*local,
                OpenAIModel(kind="openai", id="teacher", base_url=teacher_url + "/v1",
                            model="stand-in-teacher (simulated)", concurrency=16, **TEACHER_PRICE)],
        contracts=[contract("ticket-triage", tickets.INSTRUCTIONS, tickets.SCHEMA),
                   contract("invoice-extraction", documents.INSTRUCTIONS, documents.SCHEMA),
                   contract("invoice-header", documents.HEADER_INSTRUCTIONS, documents.HEADER_SCHEMA), agent],
    )


def split(items: list[Any], calibration_fraction: float) -> tuple[list[Any], list[Any]]:
    cut = int(len(items) * calibration_fraction)
    return items[:cut], items[cut:]


async def _phase(runtime: Runtime, contract: str, items: list[Any], shadow: bool, endpoint: str,
                 gold: dict[str, str] | None = None) -> list[str]:
    """Route `items`; their gold answers go to the trace store as labels, or into `gold` when given (a trace has
    one label, and live shadow checks must be able to store theirs)."""
    ids = []
    for item in items:
        _, trace = await runtime.arun(contract, item.text, shadow=shadow, endpoint=endpoint)
        if gold is None:
            runtime.store.add_label(trace.id, gold_reference(item), source="gold")
        else:
            gold[trace.id] = gold_reference(item)
        ids.append(trace.id)
    return ids


def canonical_label(label: dict[str, Any]) -> str:
    return json.dumps(label)


def gold_reference(item: Any) -> str:
    """An item's gold answer as the router records answers: JSON for labels, calls or text for agent requests."""
    if isinstance(item, agent_tools.AgentRequest):
        return agent_tools.gold_answer(item)
    return canonical_label(item.label)


def teacher_right(oracle: TeacherOracle, item: Any) -> bool:
    """Whether the simulated teacher answers `item` correctly (what sending everything to it would score)."""
    if isinstance(item, agent_tools.AgentRequest):
        assert oracle.agent is not None
        return oracle.agent.correct(item.text)
    return oracle.answer(item.text, list(item.label)) == item.label


def tool_scores(traces: list[Any], items: list[Any], rung: int | None = None) -> dict[str, Any] | None:
    """Agent requests only: the share of right calls, right tools and right decisions (call or not), for
    rung `rung`'s answers (None: the answer the router served). Text answers are not graded."""
    if not items or not isinstance(items[0], agent_tools.AgentRequest):
        return None
    by_text = {i.text: i for i in items}
    totals = {"right_call": 0, "right_tool": 0, "right_decision": 0}
    n = 0
    for trace in traces:
        item = by_text.get(trace.input or "")
        if item is None:
            continue
        if rung is None:  # the accepted attempt's answer: calls as a JSON list (trace.output is the text content)
            accepted = next((a for a in trace.attempts if a.get("status") == "accepted"), None)
            answer = accepted.get("output") if accepted else None
        else:
            own = next((a for a in trace.attempts if a.get("rung") == rung), None)
            answer = own.get("output") if own and (own.get("signals") or {}).get("valid") else None
        for key, value in agent_tools.score_answer(answer, item).items():
            totals[key] += value
        n += 1
    return {"n": n, **{k: round(v / n, 4) for k, v in totals.items()}} if n else None


def field_accuracy(traces: list[Any], items: list[Any], rung: int = 0) -> dict[str, float]:
    """Per-field agreement of one rung's answers with the gold labels (calibration split)."""
    hits: dict[str, int] = {}
    for trace, item in zip(traces, items, strict=True):
        first = next((a for a in trace.attempts if a.get("rung") == rung and a.get("output")), None)
        try:
            answer = json.loads(first["output"]) if first else {}
        except ValueError:
            answer = {}
        for key, value in (item.label.items() if isinstance(getattr(item, "label", None), dict) else ()):
            hits[key] = hits.get(key, 0) + (answer.get(key) == value)
    return {k: round(v / len(items), 3) for k, v in hits.items()} if items else {}


def _served_report(runtime: Runtime, name: str, ids: set[str], items: list[Any], oracle: TeacherOracle,
                   top_cost: float | None, gold: dict[str, str] | None = None) -> dict[str, Any] | None:
    """The routing report over the traces `ids`, with the all-teacher quality on the same items."""
    if not items:
        return None
    served = [t for t in runtime.store.query(TraceQuery(limit=1_000_000, contract=name)) if t.id in ids]
    result = report(served, {**runtime.store.labels(name), **(gold or {})}, top_cost_per_request=top_cost)
    teacher_quality = sum(teacher_right(oracle, i) for i in items) / len(items)
    routed_quality = result["quality_vs_reference"]
    result["all_top_rung_quality"] = round(teacher_quality, 4)
    result["quality_loss_vs_all_top_rung"] = (round(teacher_quality - routed_quality, 4)
                                              if routed_quality is not None else None)
    return result


def _mean_teacher_cost(traces: list[Any]) -> float | None:
    costs = [a["cost"] for t in traces for a in t.attempts if a.get("location") == "remote" and a.get("cost")]
    return sum(costs) / len(costs) if costs else None


def run_demo(n_tickets: int = 400, n_documents: int = 80, calibration_fraction: float = 0.5,
             teacher_accuracy: float = 0.97, target: float = 0.95, home: Path | None = None,
             use_predictor: bool = True, local_models: list[LlamaCppModel] | None = None,
             distill: bool = True, shifted: int = 100, min_examples: int = 40, n_agent: int = 300,
             contracts: tuple[str, ...] | None = None,
             kinds: tuple[str, ...] = ("classifier", "lora"), shadow_rate: float = 0.0) -> dict[str, Any]:
    """Run the calibration split through the whole ladder (shadow), distil a specialist from it (unless
    `distill` is False: the zero-shot ladder), calibrate, then route the held-out split and a shifted set
    (layouts, phrasings, aliases and noise never seen in training). `contracts` picks
    some of the four (default: all); `n_agent` is the agent step's request count. `local_models` are the local
    rungs, smallest first (default: the embedded SmolLM2-135M), followed by the simulated teacher. Traces,
    specialists and calibration stay in `home` (default: SMALLFLEET_HOME), so `smallfleet report --endpoint
    demo:serve` shows the held-out figures again."""
    docs = documents.generate_documents(n_documents)
    workload: dict[str, list[Any]] = {
        "ticket-triage": tickets.generate_tickets(n_tickets), "invoice-extraction": docs,
        "invoice-header": [d.header() for d in docs], "agent-step": agent_tools.generate_agent_requests(n_agent)}
    shifted_docs = documents.generate_shifted_documents(shifted)
    shifted_items: dict[str, list[Any]] = {
        "ticket-triage": tickets.generate_shifted_tickets(shifted), "invoice-extraction": shifted_docs,
        "invoice-header": [d.header() for d in shifted_docs],
        "agent-step": agent_tools.generate_shifted_agent_requests(shifted)} if shifted else {}
    unknown = set(contracts or ()) - set(workload)
    if unknown:
        raise ValueError(f"unknown demo contract(s) {', '.join(sorted(unknown))}; known: {', '.join(workload)}")
    oracle = TeacherOracle(reference_labels(), teacher_accuracy, agent=AgentOracle(agent_reference(), teacher_accuracy))
    with serve_in_thread(teacher_app(teacher_accuracy, latency_s=0.05)) as teacher_url:
        settings = Settings(home=home or Settings.from_env().home, config_path=None)
        config = demo_config(teacher_url, target, local_models=local_models, shadow_rate=shadow_rate)
        runtime = open_runtime(settings, config)
        thresholds = ThresholdStore(settings.home)
        out: dict[str, Any] = {"simulation": "the top rung is a stand-in answering from gold labels "
                                             f"with {teacher_accuracy:.0%} accuracy, not a language model",
                               "teacher_price_usd_per_1k": TEACHER_PRICE, "home": str(settings.home),
                               "mode": "distill" if distill else "zero-shot", "contracts": {}}
        try:
            for spec in config.contracts:
                if contracts and spec.name not in contracts:
                    continue
                out["contracts"][spec.name] = _contract(runtime, settings, config, spec, workload[spec.name],
                                                        shifted_items.get(spec.name, []), calibration_fraction,
                                                        target, use_predictor, distill, min_examples, oracle,
                                                        thresholds, kinds)
        finally:
            runtime.close()
    return out


def _contract(runtime: Runtime, settings: Settings, config: FleetConfig, spec: ContractSpec, items: list[Any],
              shifted: list[Any], calibration_fraction: float, target: float, use_predictor: bool, distill: bool,
              min_examples: int, oracle: TeacherOracle, thresholds: ThresholdStore,
              kinds: tuple[str, ...] = ("classifier", "lora")) -> dict[str, Any]:
    name = spec.name
    calib, held = split(items, calibration_fraction)
    calib_ids = runtime.call(_phase(runtime, name, calib, True, "demo:calibrate"))
    traces = [t for t in (runtime.store.get(i) for i in calib_ids) if t]
    labels = runtime.store.labels(name)
    models = [r.model for r in spec.ladder]
    local_rungs = []
    for i, model in enumerate(models[:-1]):
        rung_samples = samples_from(traces, labels, rung=i)  # every item carries a gold label
        alone = sum(s.agrees and s.valid for s in rung_samples) / len(traces) if traces else None
        local_rungs.append({"rung": i, "model": model, "answered": len(rung_samples),
                            "alone_quality": round(alone, 4) if alone is not None else None,
                            "alone_field_accuracy": field_accuracy(traces, calib, rung=i)})
    fitted = calibrate_rungs(traces, labels, models, target)
    samples = samples_from(traces, labels)  # the predictor is about the first rung
    by_id = {t.id: t.input or "" for t in traces}
    texts = [by_id[s.trace_id] for s in samples]
    succeeded = [s.valid and s.agrees for s in samples]
    predictor_figures = evaluate_predictor(texts, succeeded)
    if use_predictor:
        TextPredictor().fit(texts, succeeded).save(predictor_path(settings.home, name, models[0]))
    thresholds.save(name, installed_rules(fitted), {"target": target, "rungs": [c.as_dict() for c in fitted]},
                    merge=True)
    distilled = None
    if distill:
        from smallfleet.distill.loop import DistillOptions, run_distill
        from smallfleet.distill.train_lora import LoraOptions

        # Tool contracts: the specialist is trained and served on the bare input (SmolLM2's prompt with the ten
        # tools described is 776 tokens, bare 45; the grammar still enforces names and arguments).
        prompt = "bare" if spec.output.tools else "input"
        # Every kind asked for that fits is trained (by default classifier and LoRA side by side for tickets);
        # the gate promotes the smallest that passes.
        distilled = run_distill(settings, name, DistillOptions(min_examples=min_examples, parity_items=15,
                                                               kinds=kinds,
                                                               lora=LoraOptions(prompt=prompt)), config=config)
    runtime.promotions.refresh()  # the served contract picks up the rules, the predictor and a promoted specialist
    served_ladder = [r.model for r in runtime.router.contract(name).spec.ladder]
    # With live shadow checks on, the held-out gold answers stay out of the trace store: the checks' references
    # are what the live guard sees, as in production where nobody labels every request.
    gold: dict[str, str] | None = {} if spec.shadow_rate > 0 else None
    held_ids = set(runtime.call(_phase(runtime, name, held, False, "demo:serve", gold)))
    shifted_ids = set(runtime.call(_phase(runtime, name, shifted, False, "demo:serve-shifted", gold)))
    top_cost = _mean_teacher_cost(traces)
    live_guard = _live_guard(runtime, settings, spec, top_cost) if spec.shadow_rate > 0 else None
    return {
        "calibration_items": len(calib), "held_out_items": len(held), "shifted_items": len(shifted),
        "small_model_alone_quality": local_rungs[0]["alone_quality"],
        "small_model_alone_field_accuracy": local_rungs[0]["alone_field_accuracy"],
        "local_rungs_alone": local_rungs,
        "calibration": [{k: v for k, v in c.as_dict().items() if k != "curve"} for c in fitted],
        "predictor": {**predictor_figures, "used": use_predictor, "skip_below": PREDICTOR_SKIP_BELOW},
        "distill": _distill_summary(distilled),
        "served_ladder": served_ladder,
        "curves": {str(c.rung): c.as_dict()["curve"] for c in fitted},
        "held_out_report": _served_report(runtime, name, held_ids, held, oracle, top_cost, gold),
        "shifted_report": _served_report(runtime, name, shifted_ids, shifted, oracle, top_cost, gold),
        "live_guard": live_guard,
        "tool_scores": _tool_figures(runtime, name, traces, calib, held_ids, held, shifted_ids, shifted),
    }


def _live_guard(runtime: Runtime, settings: Settings, spec: ContractSpec, top_cost: float | None) -> dict[str, Any]:
    """After the held-out and shifted traffic: what the live shadow checks measured of the promoted specialist,
    and whether the rollback on live quality fired (`distill.monitor`, as `distill watch` runs it)."""
    from smallfleet.distill.monitor import check_and_roll_back

    runtime.call(runtime.live.drain())
    checks = runtime.live.checked
    outcome = check_and_roll_back(settings, spec, min_samples=20, sources=("shadow",))
    runtime.promotions.refresh()
    return {"shadow_rate": spec.shadow_rate, "shadow_checks": checks, "skipped_checks": runtime.live.skipped,
            "shadow_cost_usd": round(checks * top_cost, 6) if top_cost is not None else None,
            "check": outcome, "served_ladder_after": [r.model for r in runtime.router.contract(spec.name).spec.ladder]}


def _tool_figures(runtime: Runtime, name: str, calib_traces: list[Any], calib: list[Any], held_ids: set[str],
                  held: list[Any], shifted_ids: set[str], shifted: list[Any]) -> dict[str, Any] | None:
    """Agent step: `tool_choice: auto` accuracy of the zero-shot small model (calibration split, before
    distillation) and of what the router served afterwards (held-out and shifted)."""
    if tool_scores(calib_traces, calib, rung=0) is None:
        return None
    served = runtime.store.query(TraceQuery(limit=1_000_000, contract=name))
    return {"zero_shot_small_model_calibration_split": tool_scores(calib_traces, calib, rung=0),
            "served_held_out": tool_scores([t for t in served if t.id in held_ids], held),
            "served_held_out_local_answers": tool_scores(
                [t for t in served if t.id in held_ids and _answered_locally(t)], held),
            "served_shifted": tool_scores([t for t in served if t.id in shifted_ids], shifted)}


def _distill_summary(result: dict[str, Any] | None) -> dict[str, Any] | None:
    if result is None:
        return None
    keep = ("version", "model_id", "promoted", "gate", "metrics", "candidates", "training_minutes", "minutes")
    return {**{k: result.get(k) for k in keep}, "dataset": {k: result["dataset"].get(k)
                                                            for k in ("kept", "dropped", "sources")}}


def _answered_locally(trace: Any) -> bool:
    accepted = next((a for a in trace.attempts if a.get("status") == "accepted"), None)
    return accepted is not None and accepted.get("location") == "local"
