"""The `smallfleet` command line: thin typer commands over the library.

Errors a user can fix print as one line on stderr (`error: ...`) with exit status 1; nothing
here holds business logic.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from smallfleet.cli.bench import bench_app
from smallfleet.cli.cache import cache_app
from smallfleet.cli.distill import distill_app, specialists_app
from smallfleet.cli.errors import one_line_errors
from smallfleet.cli.guard import audit_app, guard_app
from smallfleet.cli.kb import kb_app
from smallfleet.cli.keys import keys_app
from smallfleet.cli.models import models_app
from smallfleet.cli.workflow import run_command, show_run
from smallfleet.config.fleet import load_fleet
from smallfleet.config.settings import Settings
from smallfleet.errors import SmallfleetError
from smallfleet.workload.documents import POOL as DOCUMENT_POOL
from smallfleet.workload.tickets import POOL as TICKET_POOL

app = typer.Typer(help="smallfleet: small models behind one OpenAI-compatible endpoint.", no_args_is_help=True)
traces_app = typer.Typer(help="List and show recorded requests.", invoke_without_command=True)
app.add_typer(traces_app, name="traces")
app.add_typer(bench_app, name="bench")
app.add_typer(models_app, name="models")
app.add_typer(distill_app, name="distill")
app.add_typer(specialists_app, name="specialists")
app.add_typer(guard_app, name="guard")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(kb_app, name="kb")
app.add_typer(cache_app, name="cache")
app.command("run")(run_command)


@app.command()
@one_line_errors
def serve(
    host: str = typer.Option(None, help="listen address (default SMALLFLEET_HOST or 127.0.0.1)"),
    port: int = typer.Option(None, help="listen port (default SMALLFLEET_PORT or 8080)"),
    workers: int = typer.Option(1, min=1, help="gateway processes; each loads its own copy of local models"),
    allow_unauthenticated: bool = typer.Option(False, "--allow-unauthenticated",
                                               help="listen on a non-loopback address although no API keys exist"),
    log_format: str = typer.Option("text", "--log-format", help="text, or json: one JSON object per line with the "
                                   "trace id, plus one `request` line per finished request"),
) -> None:
    """Start the OpenAI-compatible gateway on the configured fleet (default: embedded SmolLM2)."""
    import os

    import uvicorn

    from smallfleet.observe.logs import log_config

    if log_format not in ("text", "json"):
        raise SmallfleetError(f"--log-format takes text or json, not {log_format!r}")
    os.environ["SMALLFLEET_LOG_FORMAT"] = log_format  # the workers build their apps from the environment
    logging_config = log_config(log_format, "info" if log_format == "json" else "warning")

    from smallfleet.api.app import app_from_settings

    settings = Settings.from_env()
    host, port = host or settings.host, port or settings.port
    keys = _keys_required(settings)
    if not _loopback(host) and not keys:
        # Without keys anyone who can reach a non-loopback address could use the fleet.
        if not allow_unauthenticated:
            raise SmallfleetError(f"refusing to listen on {host}: no API keys are configured, so every client that "
                                  "can reach it could use this gateway; create one (`smallfleet keys create`) or "
                                  "pass --allow-unauthenticated to do it anyway")
        typer.echo(f"warning: listening on {host} without API keys: every client that can reach it can use it",
                   err=True)
    typer.echo(f"smallfleet gateway on http://{host}:{port}/v1  (traces: {settings.trace_db}; API keys: "
               f"{'required on every request' if keys else 'none configured, requests are not authenticated'})",
               err=True)
    if workers == 1:
        uvicorn.run(app_from_settings(settings), host=host, port=port, log_config=logging_config, access_log=False)
        return
    load_fleet(settings.config_path)  # a config error is reported once, before any worker starts
    _metrics_dir(settings.home)  # before any worker imports prometheus_client: its mode is chosen at import
    uvicorn.run("smallfleet.api.app:app_from_env", factory=True, workers=workers, host=host, port=port,
                log_config=logging_config, access_log=False)


def _metrics_dir(home: Path) -> None:
    """Give the workers one empty directory to share their metrics through (`PROMETHEUS_MULTIPROC_DIR`, inherited
    by the workers), unless the operator set one: `HOME/metrics/<this process's pid>`, so two gateways on one
    home never mix their counts. Directories of gateways that are gone are removed, as the library asks."""
    import os
    import shutil

    from smallfleet.observe.metrics import alive

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    root = home / "metrics"
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        if not (old.name.isdigit() and alive(int(old.name))):
            shutil.rmtree(old, ignore_errors=True)
    path = root / str(os.getpid())
    path.mkdir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def _keys_required(settings: Settings) -> bool:
    """Whether the gateway will ask every request for a key: tenants in the fleet file or a key ever created."""
    from smallfleet.auth.keys import open_keys

    if load_fleet(settings.config_path).tenants:
        return True
    if not settings.database_url and not settings.keys_db.exists():
        return False
    store = open_keys(settings)
    try:
        return store.configured()
    finally:
        store.close()


def _loopback(host: str) -> bool:
    """Only this machine can connect: localhost or a loopback address."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@app.command()
@one_line_errors
def chat(
    prompt: str = typer.Argument(..., help="the user message"),
    model: str = typer.Option("default", "--model", "-m", help="model id or contract name from the fleet"),
    system: str = typer.Option(None, "--system", "-s", help="optional system message"),
    max_tokens: int = typer.Option(256, help="most tokens to generate"),
    temperature: float = typer.Option(0.7),
) -> None:
    """Send one prompt to a model (streamed) or a contract (routed) in-process; the request is traced."""
    from smallfleet.cli.chat import run_chat

    settings = Settings.from_env()
    config = load_fleet(settings.config_path)
    if any(c.name == model for c in config.contracts):
        from smallfleet.runtime import open_runtime

        with open_runtime(settings, config) as runtime:
            result = runtime.run(model, prompt)
        if result.outcome is None:
            raise SmallfleetError(f"contract {model!r}: no rung produced an acceptable answer "
                                  f"({result.escalation_reason})")
        calls = [f"{c.name}({c.arguments})" for c in result.outcome.tool_calls]
        typer.echo(result.outcome.content if result.outcome.content is not None else "; ".join(calls))
        typer.echo(f"[rung {result.rung}: {result.model}; escalation: {result.escalation_reason or 'none'}; "
                   f"cost ${result.cost:.6f}]", err=True)
        return
    asyncio.run(run_chat(settings, prompt, model, system, max_tokens, temperature, _write_flush))
    typer.echo("")


@traces_app.callback()
@one_line_errors
def traces_list(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", "-n", min=1),
    model: str = typer.Option(None, help="only this model"),
    contract: str = typer.Option(None, help="only this contract"),
    status: str = typer.Option(None, help="ok or error"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line"),
) -> None:
    """List recent traces, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from smallfleet.trace.store import TraceQuery, open_store

    store = open_store(Settings.from_env())
    rows = store.query(TraceQuery(limit=limit, model=model, contract=contract, status=status))
    store.close()
    for t in rows:
        if as_json:
            typer.echo(json.dumps(asdict(t), ensure_ascii=False))
            continue
        when = datetime.fromtimestamp(t.created_at).strftime("%Y-%m-%d %H:%M:%S")
        text = (t.output if t.status == "ok" else f"[{t.error_type}] {t.error_message}") or ""
        tokens = f"{t.prompt_tokens or 0}+{t.completion_tokens or 0}"
        latency = f"{t.latency_ms:.0f}ms" if t.latency_ms is not None else "-"
        typer.echo(f"{t.id}  {when}  {t.model:<16} {t.status:<5} {tokens:>9} {latency:>8}  {text[:60]!r}")
    if not rows:
        typer.echo("no traces yet", err=True)


@traces_app.command("purge")
@one_line_errors
def traces_purge(
    older_than: float = typer.Option(None, "--older-than", min=0.0, help="days; default: the fleet file's "
                                     "guard.retention_days"),
) -> None:
    """Delete traces (and their labels) older than N days; their spend still counts against budgets."""
    import time

    from smallfleet.trace.store import open_store

    settings = Settings.from_env()
    days = older_than if older_than is not None else load_fleet(settings.config_path).guard.retention_days
    if days is None:
        raise SmallfleetError("traces purge: say --older-than DAYS (the fleet file sets no guard.retention_days)")
    store = open_store(settings)
    try:
        removed = store.purge(time.time() - days * 86400)
    finally:
        store.close()
    typer.echo(f"purged {removed['traces']} traces and {removed['labels']} labels older than {days:g} days")


@traces_app.command("label")
@one_line_errors
def traces_label(
    trace_id: str = typer.Argument(..., help="trace id"),
    reference: str = typer.Argument(..., help="the correct answer (text or JSON)"),
    source: str = typer.Option("feedback", help="where the reference comes from"),
) -> None:
    """Attach a reference answer to a trace (used by `calibrate` and `report`)."""
    from smallfleet.trace.store import open_store

    store = open_store(Settings.from_env())
    try:
        if store.get(trace_id) is None:
            raise SmallfleetError(f"no trace with id {trace_id!r}")
        store.add_label(trace_id, reference, source)
    finally:
        store.close()
    typer.echo(f"labelled {trace_id}")


@traces_app.command("show")
@one_line_errors
def traces_show(trace_id: str = typer.Argument(..., help="trace id or workflow run id (or a unique prefix)")) -> None:
    """Print one trace as JSON, or a workflow run as a tree of its hops."""
    from smallfleet.trace.store import open_store

    store = open_store(Settings.from_env())
    trace = store.get(trace_id)
    store.close()
    if trace is None and show_run(trace_id):
        return
    if trace is None:
        typer.echo(f"error: no trace or run with id {trace_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(asdict(trace), indent=2, ensure_ascii=False))



def _write_flush(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


@app.command()
@one_line_errors
def demo(
    tickets: int = typer.Option(400, min=4, max=TICKET_POOL, help=f"support tickets to run (of {TICKET_POOL})"),
    documents: int = typer.Option(80, min=4, max=DOCUMENT_POOL, help=f"invoice documents to run (of {DOCUMENT_POOL})"),
    calibration_fraction: float = typer.Option(0.5, min=0.1, max=0.9, help="share used to calibrate"),
    teacher_accuracy: float = typer.Option(0.97, min=0.0, max=1.0, help="accuracy of the simulated teacher"),
    target: float = typer.Option(0.95, min=0.5, max=1.0, help="agreement target for local answers"),
    predictor: bool = typer.Option(True, help="learn and use the pre-generation predictor"),
    ladder: str = typer.Option("smollm2-135m", help="local rungs, smallest first, as comma-separated model ids "
                               "(installed with `smallfleet models pull`); the simulated teacher comes last"),
    zero_shot: bool = typer.Option(False, "--zero-shot", help="reference: no distillation (the zero-shot ladder)"),
    shifted: int = typer.Option(100, min=0, max=500, help="reference: shifted tickets routed after the held-out split"),
    workload: str = typer.Option("reference", help="reference (generated tickets and invoices) or clinc150 (real "
                                 "user requests: cold-start traffic -> distill -> route the test split)"),
    traffic: int = typer.Option(1000, min=50, max=15100, help="clinc150: cold-start requests (of the train split)"),
    test_limit: int = typer.Option(None, min=10, max=5500, help="clinc150: route an even sample of the test split"),
    kinds: str = typer.Option("classifier,lora", help="reference: specialist kinds to train where they fit"),
    agent: int = typer.Option(300, min=4, max=1000, help="reference: agent-step requests (tool calls) to run"),
    contracts: str = typer.Option(None, help="reference: only these contracts, comma-separated (ticket-triage, "
                                  "invoice-extraction, invoice-header, agent-step)"),
    shadow_rate: float = typer.Option(0.0, min=0.0, max=1.0, help="reference: share of locally accepted held-out "
                                      "and shifted answers also checked by the teacher in the background; then "
                                      "the rollback on live quality runs"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Reference workload through local models -> simulated teacher: calibrate every local rung, then route a
    held-out split. `--workload clinc150`: the distillation loop on real user requests through a live gateway."""
    from smallfleet.evals.demo import run_demo

    if workload not in ("reference", "clinc150"):
        raise SmallfleetError(f"--workload must be reference or clinc150, not {workload!r}")
    if workload == "clinc150":
        from smallfleet.evals.clinc_loop import run_clinc

        result = run_clinc(traffic, test_limit, teacher_accuracy, target)
        typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))
        return

    chosen = tuple(c.strip() for c in contracts.split(",") if c.strip()) if contracts else None
    known = ("ticket-triage", "invoice-extraction", "invoice-header", "agent-step")
    if chosen and set(chosen) - set(known):
        raise SmallfleetError(f"--contracts takes {', '.join(known)}, not {contracts!r}")
    result = run_demo(tickets, documents, calibration_fraction, teacher_accuracy, target, use_predictor=predictor,
                      local_models=demo_ladder(ladder), distill=not zero_shot, shifted=shifted, n_agent=agent,
                      contracts=chosen, kinds=_demo_kinds(kinds), shadow_rate=shadow_rate)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


def _demo_kinds(kinds: str) -> tuple[str, ...]:
    wanted = tuple(k.strip() for k in kinds.split(",") if k.strip())
    if not wanted or set(wanted) - {"classifier", "lora"}:
        raise SmallfleetError(f"--kinds takes classifier and/or lora, not {kinds!r}")
    return wanted


def demo_ladder(ids: str) -> list[Any]:
    """`--ladder a,b,c` -> llama.cpp models: the embedded SmolLM2 for `smollm2-135m`, else the model store's file."""
    from smallfleet.config.fleet import DEFAULT_MODEL_ID, LlamaCppModel

    names = [n.strip() for n in ids.split(",") if n.strip()]
    if not names:
        raise SmallfleetError("--ladder: name at least one local model")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated or "teacher" in names:
        raise SmallfleetError(f"--ladder: model ids must be unique and not 'teacher': {', '.join(repeated or names)}")
    from smallfleet.cli.bench import model_path

    # model_path: the embedded SmolLM2, or an installed model's file (a one-line error if it is not installed)
    return [LlamaCppModel(kind="llamacpp", id=name, path=None if name == DEFAULT_MODEL_ID else model_path(name),
                          n_ctx=2048) for name in names]


@app.command()
@one_line_errors
def calibrate(
    contract: str = typer.Argument(..., help="contract name"),
    target: float = typer.Option(None, min=0.5, max=1.0, help="agreement target (default: the contract's)"),
    holdout: float = typer.Option(0.3, min=0.0, max=0.9, help="share of traces held out to check (and bind) rules"),
    min_accepted: int = typer.Option(5, min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Choose every rung's accept threshold but the top's (and learn the first rung's predictor) from traces."""
    from smallfleet.route.calibrate import calibrate_rungs, installed_rules, samples_from
    from smallfleet.route.predictor import TextPredictor, evaluate_predictor
    from smallfleet.route.thresholds import ThresholdStore
    from smallfleet.promotion import predictor_path
    from smallfleet.trace.store import TraceQuery, open_store

    settings = Settings.from_env()
    config = load_fleet(settings.config_path)
    spec = next((c for c in config.contracts if c.name == contract), None)
    if spec is None:
        raise SmallfleetError(f"no contract named {contract!r} in the fleet")
    if len(spec.ladder) < 2:
        raise SmallfleetError(f"contract {contract!r} has a single rung, accepted as is: nothing to calibrate")
    store = open_store(settings)
    try:
        traces = store.query(TraceQuery(limit=1_000_000, contract=contract))
        labels = store.labels(contract)
    finally:
        store.close()
    goal = target or spec.quality_target
    results = calibrate_rungs(traces, labels, [r.model for r in spec.ladder], goal, holdout, min_accepted)
    if not any(r.samples + r.holdout_samples for r in results):
        raise SmallfleetError(f"no traces of {contract!r} carry an answer from a rung below the top "
                              "and a reference yet")
    rungs = [r.as_dict() for r in results]
    path = ThresholdStore(settings.home).save(contract, installed_rules(results),
                                              {"target": goal, "holdout": holdout, "rungs": rungs}, merge=True)
    first = samples_from(traces, labels)  # the predictor decides whether to skip the first rung
    predictor: dict[str, Any] | None = None
    if first:
        inputs = {t.id: t.input or "" for t in traces}
        texts, succeeded = [inputs[s.trace_id] for s in first], [s.valid and s.agrees for s in first]
        predictor = evaluate_predictor(texts, succeeded)
        TextPredictor().fit(texts, succeeded).save(predictor_path(settings.home, contract, spec.ladder[0].model))
    if as_json:
        typer.echo(json.dumps({"contract": contract, "target": goal, "holdout": holdout, "rungs": rungs,
                               "predictor": predictor, "saved_to": str(path)}))
        return

    def point(p: dict[str, Any] | None) -> str:
        if p is None:
            return "-"
        agreement = "-" if p["agreement"] is None else f"{p['agreement']:.3f}"
        return f"local share {p['local_share']:.3f}, agreement {agreement}, {p['accepted']} accepted"

    for r in rungs:
        typer.echo(f"rung {r['rung']} ({r['model']}): {r['samples']} training samples, "
                   f"{r['holdout_samples']} held out")
        typer.echo(f"  {'threshold':>12} {'local share':>12} {'agreement':>10} {'accepted':>9}   "
                   f"(signal {r['signal'] or 'mean_logprob'})")
        for p in r["curve"]:
            agreement = "-" if p["agreement"] is None else f"{p['agreement']:.3f}"
            typer.echo(f"  {p['threshold']:>12.4f} {p['local_share']:>12.3f} {agreement:>10} {p['accepted']:>9}")
        chosen = f"{r['signal']} >= {r['threshold']:.4f}" if r["signal"] else "none"
        typer.echo(f"  chosen: {chosen}; train: {point(r['train'])}; held out: {point(r['holdout'])}")
        typer.echo(f"  {'installed' if r['installed'] else 'NOT installed'}: {r['why']}")
    typer.echo(f"top rung ({spec.ladder[-1].model}): accepted as is")
    typer.echo(f"predictor (rung 0): {predictor if predictor is not None else 'not learned: no first-rung samples'}")
    typer.echo(f"saved to {path}")


@app.command("report")
@one_line_errors
def report_cmd(
    contract: str = typer.Option(None, "--contract", "-c", help="only this contract"),
    endpoint: str = typer.Option(None, "--endpoint", help="only traces from this endpoint (e.g. demo:serve, "
                                 "/v1/chat/completions)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Local share, cost versus all-top-rung, quality, latency and escalations, from the traces."""
    from smallfleet.route.report import report
    from smallfleet.trace.store import TraceQuery, open_store

    settings = Settings.from_env()
    store = open_store(settings)
    names = [contract] if contract else sorted({t.contract for t in store.query(
        TraceQuery(limit=1_000_000, endpoint=endpoint)) if t.contract})
    result = {}
    for name in names:
        everything = store.query(TraceQuery(limit=1_000_000, contract=name))
        top = [a["cost"] for t in everything for a in t.attempts if a.get("location") == "remote" and a.get("cost")]
        chosen = [t for t in everything if endpoint is None or t.endpoint == endpoint]
        # a top-rung answer's cost, estimated from every trace of the contract when the chosen ones hold none
        result[name] = report(chosen, store.labels(name), sum(top) / len(top) if top else None)
    store.close()
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))
