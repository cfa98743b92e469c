"""`smallfleet bench ...`: benchmarks that print figures (JSON with --json). Not tests."""

from __future__ import annotations

import json

import typer

bench_app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)


def _embedded():  # noqa: ANN202 - a LlamaCppBackend, imported lazily (loads the native library)
    """The embedded SmolLM2 backend with room for the suites' longer prompts."""
    from smallfleet.backends.embedded import embedded_gguf_path
    from smallfleet.backends.llamacpp import LlamaCppBackend, LlamaCppOptions

    return LlamaCppBackend("smollm2-135m", LlamaCppOptions(path=embedded_gguf_path(), n_ctx=4096))


def _print(result: dict[str, object], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(json.dumps(result, indent=2))


@bench_app.command("engine")
def engine(
    max_tokens: int = typer.Option(96, min=1),
    rounds: int = typer.Option(2, min=1),
    threads: int = typer.Option(None, min=1, help="llama.cpp threads (default: library default)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Tokens/s of the embedded backend versus raw llama-cpp-python on the same prompts, same run."""
    from smallfleet.evals.engine import run_engine_bench

    _print(run_engine_bench(max_tokens=max_tokens, rounds=rounds, n_threads=threads).as_dict(), as_json)


@bench_app.command("gateway")
def gateway(
    concurrency: int = typer.Option(100, min=1),
    requests: int = typer.Option(2000, min=1, help="requests per side per round"),
    rounds: int = typer.Option(2, min=1),
    latency_ms: float = typer.Option(100.0, min=0, help="fixed latency of the fake backend"),
    workers: int = typer.Option(1, min=1, help="gateway worker processes"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Latency the gateway adds over calling a fixed-latency backend directly, at N concurrent clients."""
    from smallfleet.evals.gateway import run_gateway_bench

    _print(run_gateway_bench(concurrency=concurrency, requests=requests, rounds=rounds, latency_ms=latency_ms,
                             workers=workers),
           as_json)


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
def schemas(
    max_tokens: int = typer.Option(256, min=1),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Run the 200+ schema suite on the embedded model; every output is validated with jsonschema."""
    from smallfleet.evals.schema_run import run_suite, summarise
    from smallfleet.evals.schema_suite import ALL_CASES

    _print(summarise(run_suite(_embedded(), ALL_CASES, max_tokens=max_tokens)), as_json)


@bench_app.command("tools")
def tools(
    max_tokens: int = typer.Option(160, min=1),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Run the 60-case tool-calling suite on the embedded model; accuracy per category and mode."""
    from smallfleet.evals.tool_run import run_tool_suite, summarise_tools
    from smallfleet.evals.tool_suite import ALL_TOOL_CASES

    _print(summarise_tools(run_tool_suite(_embedded(), ALL_TOOL_CASES, max_tokens=max_tokens)), as_json)
