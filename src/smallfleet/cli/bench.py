"""`smallfleet bench ...`: benchmarks that print figures (JSON with --json). Not tests."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from smallfleet.cli.errors import one_line_errors
from smallfleet.errors import SmallfleetError

bench_app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)


MODEL_HELP = "installed model name (smallfleet models), a GGUF path, or smollm2-135m (embedded)"


def model_path(model: str):  # noqa: ANN201 - a Path
    """The GGUF of `model`: the embedded SmolLM2, an installed model's name, or a file path."""
    from pathlib import Path

    from smallfleet.backends.embedded import embedded_gguf_path
    from smallfleet.config.settings import Settings
    from smallfleet.models.store import ModelStore

    if model in ("smollm2-135m", "smollm2-135m-instruct"):
        return embedded_gguf_path()
    if model.endswith(".gguf") and Path(model).is_file():
        return Path(model)
    return ModelStore(Settings.from_env().home).path_of(model)


def _local(model: str, loop_guard: bool = True, n_threads: int | None = None):  # noqa: ANN202 - LlamaCppBackend
    """A local backend with room for the suites' longer prompts."""
    from smallfleet.backends.llamacpp import LlamaCppBackend, LlamaCppOptions

    return LlamaCppBackend(model, LlamaCppOptions(path=model_path(model), n_ctx=4096, loop_guard=loop_guard,
                                                  n_threads=n_threads))


def _print(result: dict[str, object], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(json.dumps(result, indent=2))


@bench_app.command("engine")
@one_line_errors
def engine(
    model: str = typer.Option("smollm2-135m", "--model", "-m", help=MODEL_HELP),
    max_tokens: int = typer.Option(96, min=1),
    rounds: int = typer.Option(2, min=1),
    threads: int = typer.Option(None, min=1, help="llama.cpp threads (default: library default)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Tokens/s of the embedded backend versus raw llama-cpp-python on the same prompts, same run."""
    from smallfleet.evals.engine import run_engine_bench

    _print(run_engine_bench(max_tokens=max_tokens, rounds=rounds, n_threads=threads,
                            path=model_path(model), model=model).as_dict(), as_json)


@bench_app.command("gateway")
@one_line_errors
def gateway(
    concurrency: int = typer.Option(100, min=1),
    requests: int = typer.Option(2000, min=1, help="requests per side per round"),
    rounds: int = typer.Option(2, min=1),
    latency_ms: float = typer.Option(100.0, min=0, help="fixed latency of the fake backend"),
    workers: int = typer.Option(1, min=1, help="gateway worker processes"),
    observability: bool = typer.Option(False, "--observability", help="two gateways side by side: metrics and "
                                       "spans off, and on (spans exported over OTLP to the fake upstream)"),
    rate: float = typer.Option(None, min=1, help="open loop: Poisson arrivals at this many requests/s (instead of "
                               "--concurrency closed-loop clients)"),
    baseline: str = typer.Option(None, help="a git revision of this checkout: its gateway runs beside this one, "
                                 "phases interleaved, so before and after come from one run"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Latency the gateway adds over calling a fixed-latency backend directly: N closed-loop clients, or (--rate)
    open-loop Poisson arrivals."""
    from contextlib import nullcontext

    from smallfleet.evals.gateway import checkout, run_gateway_bench

    with checkout(baseline) if baseline else nullcontext(None) as baseline_src:
        result = run_gateway_bench(concurrency=concurrency, requests=requests, rounds=rounds, latency_ms=latency_ms,
                                   workers=workers, observability=observability, rate=rate, baseline=baseline_src,
                                   baseline_name=baseline or "baseline")
    _print(result, as_json)


@bench_app.command("load")
@one_line_errors
def load(
    users: int = typer.Option(500, min=1, help="concurrent clients (Locust users)"),
    duration: float = typer.Option(300.0, min=1, help="seconds of load"),
    warmup: float = typer.Option(60.0, min=0, help="seconds before memory growth is measured"),
    pacing: float = typer.Option(1.0, min=0, help="each client sends one request per this many seconds"),
    upstream_latency_ms: float = typer.Option(50.0, min=0, help="fixed latency of the fake upstream"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """N concurrent clients for minutes against a gateway in front of a fake upstream: 5xx, 429 with Retry-After,
    memory growth after warm-up, answered requests without a trace."""
    from smallfleet.evals.load import LoadOptions, run_load_bench

    _print(run_load_bench(LoadOptions(users=users, duration_s=duration, warmup_s=warmup, pacing_s=pacing,
                                      upstream_latency_s=upstream_latency_ms / 1000)), as_json)


@bench_app.command("dashboard")
@one_line_errors
def dashboard(
    traces: int = typer.Option(10_000, min=1, help="synthetic traces in the store (spread over 30 days)"),
    repeats: int = typer.Option(5, min=1, help="loads of each page"),
    screenshots: Path | None = typer.Option(None, help="save a screenshot of each page in this folder"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Dashboard page load times (p50) on a store of N synthetic traces: in Chromium when installed, and the
    pages' API calls over HTTP."""
    from smallfleet.evals.dashboard_bench import run_dashboard_bench

    _print(run_dashboard_bench(traces, repeats, screenshots), as_json)


@bench_app.command("metrics")
@one_line_errors
def metrics_check(
    requests: int = typer.Option(40, min=1, help="support tickets sent to the ticket-triage contract"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Real traffic through a live gateway (SmolLM2, then the simulated teacher), then /metrics beside
    `smallfleet report --json`: do they agree?"""
    from smallfleet.evals.metrics_check import run_metrics_check

    _print(run_metrics_check(requests), as_json)


@bench_app.command("training-load")
@one_line_errors
def training_load(
    blocks: int = typer.Option(3, min=1, help="rounds of the three phases (idle, nice 19, nice 0), interleaved"),
    per_block: int = typer.Option(16, min=1, help="requests per phase per round"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Serving latency on SmolLM2 while a LoRA training process runs beside it (nice 19 as `distill watch`
    starts it, and nice 0), against idle, in one run."""
    from smallfleet.evals.training_load import run_training_load_bench

    _print(run_training_load_bench(blocks=blocks, per_block=per_block), as_json)


@bench_app.command("export")
@one_line_errors
def export(
    contract: str = typer.Argument(..., help="a contract with a LoRA specialist in SMALLFLEET_HOME"),
    version: str = typer.Option(None, help="the specialist version (default: the newest LoRA version)"),
    storage: str = typer.Option("same,q5_1,q8_0", help="merged storage types to compare with base + adapter "
                                "(same, q8_0, q5_1, q5_0, f16), comma-separated"),
    limit: int = typer.Option(None, min=1, help="only the first N frozen test items"),
    tokens: int = typer.Option(64, min=8, help="tokens decoded per speed round"),
    rounds: int = typer.Option(3, min=1, help="decode-speed rounds (base and specialist alternated)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """A LoRA specialist stored as base + adapter and as merged GGUFs: exact match on the frozen test split,
    answers identical to the adapter's, size and decode speed vs the base, side by side in one run."""
    from smallfleet.config.settings import Settings
    from smallfleet.evals.export_bench import run_export_bench

    kinds = tuple(q.strip() for q in storage.split(",") if q.strip())
    _print(run_export_bench(Settings.from_env(), contract, version, kinds, limit, tokens, rounds), as_json)


@bench_app.command("prompt-cost")
@one_line_errors
def prompt_cost(
    contract: str = typer.Option("agent-step", help="a reference demo contract: agent-step, ticket-triage, "
                                 "invoice-extraction, invoice-header"),
    steps: int = typer.Option(4, min=1, help="LoRA training steps timed per prompt mode"),
    requests: int = typer.Option(6, min=1, help="requests timed per prompt mode"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Prompt tokens, LoRA seconds per training step and serving latency for the bare, input and contract
    prompts of one contract, side by side in one run."""
    from smallfleet.evals.prompt_cost import run_prompt_cost_bench

    _print(run_prompt_cost_bench(contract, steps=steps, requests=requests), as_json)


@bench_app.command("clinc-curve")
@one_line_errors
def clinc_curve(
    sizes: str = typer.Option("1000,2000,4000,8000", help="traces (escalated requests) per retrain, comma-separated"),
    test_limit: int = typer.Option(2000, min=10, max=5500, help="an even sample of the 5,500 test requests"),
    teacher_accuracy: float = typer.Option(0.97, min=0.0, max=1.0, help="accuracy of the simulated teacher"),
    target: float = typer.Option(0.95, min=0.5, max=1.0, help="quality target for accepted local answers"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """CLINC150 learning curve of the classifier specialist: accuracy, local share, quality loss and cost
    reduction after retraining on 1k, 2k, 4k, 8k escalated requests (real text, simulated teacher)."""
    from smallfleet.errors import SmallfleetError
    from smallfleet.evals.clinc_curve import run_clinc_curve

    try:
        counts = tuple(int(x) for x in sizes.split(",") if x.strip())
    except ValueError:
        raise SmallfleetError(f"--sizes takes comma-separated numbers, not {sizes!r}") from None
    if not counts or min(counts) < 50 or max(counts) > 15100:
        raise SmallfleetError("--sizes: each between 50 and 15,100 (the train splits hold 15,100 requests)")
    _print(run_clinc_curve(counts, test_limit, teacher_accuracy, target), as_json)


@bench_app.command("constrained")
def constrained(
    max_tokens: int = typer.Option(128, min=1),
    rounds: int = typer.Option(2, min=1),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """JSON-schema-constrained vs unconstrained tokens/s (same prompts, same run), compile and mask times."""
    from smallfleet.evals.constrained import run_constrained_bench

    _print(run_constrained_bench(max_tokens=max_tokens, rounds=rounds), as_json)


@bench_app.command("schemas")
@one_line_errors
def schemas(
    model: str = typer.Option("smollm2-135m", "--model", "-m", help=MODEL_HELP),
    max_tokens: int = typer.Option(256, min=1),
    loop_guard: str = typer.Option("on", help="on, off, or both (the suite twice, side by side)"),
    every: int = typer.Option(1, min=1, help="run every Nth case only (a fixed, repeatable sample)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Run the 200+ schema suite on a local model; every output is validated with jsonschema."""
    from smallfleet.evals.schema_run import compare, run_suite, summarise
    from smallfleet.evals.schema_suite import ALL_CASES

    cases = ALL_CASES[::every]
    if loop_guard not in ("on", "off", "both"):
        raise SmallfleetError(f"--loop-guard must be on, off or both, not {loop_guard!r}")
    backend = _local(model, loop_guard=loop_guard != "off")
    if loop_guard != "both":
        _print({"model": model, "loop_guard": loop_guard, "every": every,
                **summarise(run_suite(backend, cases, max_tokens))}, as_json)
        return
    backend.loop_guard = False
    off = run_suite(backend, cases, max_tokens)
    backend.loop_guard = True
    _print({"model": model, "every": every, **compare(off, run_suite(backend, cases, max_tokens))}, as_json)


@bench_app.command("tools")
@one_line_errors
def tools(
    model: str = typer.Option("smollm2-135m", "--model", "-m", help=MODEL_HELP),
    max_tokens: int = typer.Option(160, min=1),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Run the 60-case tool-calling suite on a local model; accuracy per category and mode."""
    from smallfleet.evals.tool_run import run_tool_suite, summarise_tools
    from smallfleet.evals.tool_suite import ALL_TOOL_CASES

    backend = _local(model)
    result = summarise_tools(run_tool_suite(backend, ALL_TOOL_CASES, max_tokens=max_tokens))
    _print({"model": model, "tool_format": backend.tool_format.name, **result}, as_json)


@bench_app.command("guard")
@one_line_errors
def guard(
    canaries: int = typer.Option(240, min=10, max=2000, help="canary snippets (seeded; every value unique)"),
    seed: int = typer.Option(17, help="seed of the canary corpus"),
    latency_requests: int = typer.Option(100, min=2, help="request pairs for the added-latency comparison"),
    snippets: int = typer.Option(400, min=20, max=5000, help="labelled snippets for precision and recall"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Canaries through a live gateway (redact and local_only contracts, plain requests, streamed) to a recording
    remote: planted values found in remote payloads, traces, logs and audit; restore rate; precision/recall per
    category; the guard's added latency side by side."""
    from smallfleet.evals.guard_bench import run_guard_bench

    _print(run_guard_bench(canaries, seed, latency_requests, snippets), as_json)


@bench_app.command("workflow")
@one_line_errors
def workflow(
    runs: int = typer.Option(10, min=1, max=200, help="tickets run through the workflow on SmolLM2 (after a warm-up)"),
    large_runs: int = typer.Option(3, min=0, max=50, help="tickets on the largest installed local model (0: skip)"),
    large: str = typer.Option(None, help="the larger local model (default: the largest installed Qwen)"),
    train_tickets: int = typer.Option(600, min=0, max=2000, help="gold-labelled tickets (not the benchmark's) to "
                                      "train the triage specialists on (0: skip that variant)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """A 20-hop support workflow (contracts, tools, constrained model calls, one branch) on the local fleet: p50/p95
    seconds per run, where the time goes, accuracy against gold labels; the prompt layout's effect (KV reuse); the
    same workflow on the largest local model."""
    from smallfleet.evals.workflow_bench import run_workflow_bench

    _print(run_workflow_bench(runs, large_runs, large, train_tickets=train_tickets), as_json)


@bench_app.command("agents-sdk")
@one_line_errors
def agents_sdk(
    model: str = typer.Option("smollm2-135m", "--model", "-m", help="smollm2-135m or an installed model's name"),
    question: str = typer.Option("What is the status of order A-17?", help="the customer's message"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """The OpenAI Agents SDK's default (Responses) model runs a two-tool support agent against a live gateway on one
    local model: turns, tool calls, final answer, seconds and the run's trace tree."""
    from smallfleet.evals.agents_sdk_run import run_agents_sdk

    _print(run_agents_sdk(model, question), as_json)


@bench_app.command("cache")
@one_line_errors
def cache_bench(
    threshold: float = typer.Option(0.9, min=0.01, max=1.0, help="the semantic match threshold (cosine)"),
    top_k: int = typer.Option(3, min=1, max=20, help="passages retrieved per question"),
    clinc: int | None = typer.Option(None, min=1, max=5500, help="instead: the semantic cache of a classification "
                                     "contract on this many CLINC150 test requests, against its 15,100 training "
                                     "requests cached"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """The answer cache on the Python FAQ's paraphrase and near-miss pairs: hit rate, false-hit rate, latency
    of a hit against a miss, and a threshold sweep with and without the passage check. With --clinc: hit and
    false-hit rates of classification near hits per threshold and number of agreeing neighbours."""
    if clinc is not None:
        from smallfleet.evals.cache_class_bench import run_class_cache_bench

        _print(run_class_cache_bench(clinc), as_json)
        return
    from smallfleet.evals.cache_bench import run_cache_bench

    _print(run_cache_bench(threshold, top_k), as_json)
