"""`smallfleet distill dataset|run CONTRACT` and `smallfleet specialists list|show|promote|rollback`.

Thin commands over `smallfleet.distill` and `smallfleet.specialists`; errors print as one line.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import typer

from smallfleet.cli.errors import one_line_errors
from smallfleet.config.fleet import load_fleet
from smallfleet.config.settings import Settings

distill_app = typer.Typer(help="Distil a contract's escalations into a specialist (dataset, train, gate, promote).",
                          no_args_is_help=True)
specialists_app = typer.Typer(help="Versioned specialists: list, show, promote, roll back.", no_args_is_help=True)


def _emit(result: dict[str, Any], as_json: bool) -> None:
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@distill_app.command("dataset")
@one_line_errors
def dataset(contract: str = typer.Argument(..., help="contract name"),
            dev: float = typer.Option(0.15, min=0.0, max=0.5, help="share of examples for the dev split"),
            test: float = typer.Option(0.15, min=0.0, max=0.5, help="share for the test split (frozen on first use)"),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Build the contract's dataset from traces and labels: kept, dropped (and why), balance, files written."""
    from smallfleet.distill.loop import DistillOptions, contract_spec, distill_folder, load_dataset

    settings = Settings.from_env()
    spec = contract_spec(load_fleet(settings.config_path), contract)
    data = load_dataset(settings, spec, DistillOptions(dev=dev, test=test))
    _emit({**data.summary(), "folder": str(distill_folder(settings.home, contract) / "dataset")}, as_json)


@distill_app.command("eval")
@one_line_errors
def eval_(contract: str = typer.Argument(..., help="contract name"),
          base: bool = typer.Option(True, "--base/--no-base", help="also evaluate the zero-shot first rung"),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """The zero-shot base and every version on the frozen test split (exact match, fields, validity, local share)."""
    from smallfleet.distill.loop import DistillOptions, evaluate_current

    _emit(evaluate_current(Settings.from_env(), contract, DistillOptions(base=base)), as_json)


_KINDS_HELP = "specialists to train and compare, e.g. classifier,lora (default: the smallest that fits the output)"


def _options(min_examples: int, promote: bool, base: bool, base_model: str | None, kinds: str | None, epochs: int,
             max_minutes: float, rank: int, learning_rate: float, prompt: str, device: str) -> Any:
    from smallfleet.distill.loop import DistillOptions
    from smallfleet.distill.train_lora import LoraOptions
    from smallfleet.errors import SmallfleetError

    wanted = tuple(k.strip() for k in kinds.split(",") if k.strip()) if kinds else None
    if wanted and set(wanted) - {"classifier", "lora"}:
        raise SmallfleetError(f"--kinds takes classifier and/or lora, not {kinds!r}")
    if prompt not in ("input", "bare", "contract"):
        raise SmallfleetError(f"--prompt must be input, bare or contract, not {prompt!r}")
    lora = LoraOptions(rank=rank, alpha=2 * rank, learning_rate=learning_rate, epochs=epochs, max_minutes=max_minutes,
                       device=device, prompt=prompt)
    return DistillOptions(min_examples=min_examples, promote=promote, base=base, base_model=base_model, kinds=wanted,
                          lora=lora)


@distill_app.command("run")
@one_line_errors
def run(contract: str = typer.Argument(..., help="contract name"),
        promote: bool = typer.Option(True, "--promote/--no-promote", help="promote the candidate if the gate passes"),
        base: bool = typer.Option(True, "--base/--no-base",
                                  help="also evaluate the zero-shot base model (runs it on dev and test)"),
        base_model: str = typer.Option(None, "--base-model", help="the fleet's local model to fine-tune and compare "
                                                                 "with (default: the contract's first rung)"),
        min_examples: int = typer.Option(40, min=2, help="train only with at least this many training examples"),
        kinds: str = typer.Option(None, help=_KINDS_HELP),
        epochs: int = typer.Option(3, min=1, help="LoRA: passes over the training split"),
        max_minutes: float = typer.Option(20.0, min=0.1, help="LoRA: stop training after this long, keep what it learnt"),
        rank: int = typer.Option(16, min=1, help="LoRA: rank"),
        learning_rate: float = typer.Option(3e-4, min=1e-6, help="LoRA: AdamW learning rate"),
        prompt: str = typer.Option("input", help="LoRA: input (the input and the constraint's instructions), bare (the "
                                                 "input alone) or contract (the full contract prompt)"),
        device: str = typer.Option("cpu", help="LoRA: torch device (cpu, cuda)"),
        as_json: bool = typer.Option(False, "--json")) -> None:
    """dataset -> train -> gate -> promote if it passes -> recalibrate; prints one JSON object."""
    from smallfleet.distill.loop import run_distill

    _emit(run_distill(Settings.from_env(), contract, _options(min_examples, promote, base, base_model, kinds, epochs,
                                                               max_minutes, rank, learning_rate, prompt, device)),
          as_json)


@distill_app.command("train")
@one_line_errors
def train(contract: str = typer.Argument(..., help="contract name"),
          base_model: str = typer.Option(None, "--base-model", help="the fleet's local model to fine-tune (default: "
                                                                   "the contract's first rung)"),
          min_examples: int = typer.Option(40, min=2, help="train only with at least this many training examples"),
          kinds: str = typer.Option("lora", help=_KINDS_HELP),
          epochs: int = typer.Option(3, min=1, help="LoRA: passes over the training split"),
          max_minutes: float = typer.Option(20.0, min=0.1, help="LoRA: stop training after this long"),
          rank: int = typer.Option(16, min=1, help="LoRA: rank"),
          learning_rate: float = typer.Option(3e-4, min=1e-6, help="LoRA: AdamW learning rate"),
          prompt: str = typer.Option("input", help="LoRA: input, bare or contract (see `distill run`)"),
          device: str = typer.Option("cpu", help="LoRA: torch device (cpu, cuda)"),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """Train, export and gate a new version without promoting it (`specialists promote` does that later)."""
    from smallfleet.distill.loop import run_distill

    _emit(run_distill(Settings.from_env(), contract, _options(min_examples, False, False, base_model, kinds, epochs,
                                                               max_minutes, rank, learning_rate, prompt, device)),
          as_json)


@distill_app.command("watch")
@one_line_errors
def watch(interval: float = typer.Option(60.0, min=1.0, help="seconds between passes"),
          min_new: int = typer.Option(200, min=1, help="new references that start a retrain"),
          window: int = typer.Option(200, min=10, help="recent requests over which the local share is measured"),
          drift: float = typer.Option(0.15, min=0.0, max=1.0, help="drop in local share that starts a retrain"),
          min_live_samples: int = typer.Option(30, min=1, help="referenced answers needed before a rollback"),
          once: bool = typer.Option(False, "--once", help="one pass, then exit")) -> None:
    """Retrain (in a nice-19 child process) when enough new references arrive or the local share drifts; roll back
    a promoted version whose live agreement falls below the target. One JSON line per pass."""
    from smallfleet.distill.watch import WatchOptions, watch as run_watch, watch_once

    settings = Settings.from_env()
    options = WatchOptions(min_new=min_new, window=window, drift=drift, min_live_samples=min_live_samples)
    if once:
        _emit(watch_once(settings, options), True)
        return
    try:
        run_watch(settings, interval, options, lambda result: _emit(result, True))
    except KeyboardInterrupt:
        pass


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


@specialists_app.command("list")
@one_line_errors
def list_(contract: str = typer.Argument(None, help="one contract (default: all)")) -> None:
    """Every version: kind, when, test exact match, gate, and which one is promoted."""
    from smallfleet.specialists.registry import SpecialistRegistry

    registry = SpecialistRegistry(Settings.from_env().home)
    names = [contract] if contract else registry.contracts()
    if not names:
        typer.echo("no specialists yet (smallfleet distill run CONTRACT)")
    for name in names:
        promoted = registry.state(name).get("promoted")
        for card in registry.versions(name):
            exact = card.metrics.get("candidate", {}).get("exact_match")
            mark = "*" if card.version == promoted else " "
            typer.echo(f"{mark} {card.model_id:40} {card.kind:10} {_when(card.created_at)}  test exact "
                       f"{exact if exact is not None else '-'}  gate {'passed' if card.gate.get('passed') else 'failed'}")


@specialists_app.command("show")
@one_line_errors
def show(contract: str = typer.Argument(...), version: str = typer.Argument(..., help="vN")) -> None:
    """A version's model card (JSON)."""
    from smallfleet.specialists.registry import SpecialistRegistry

    typer.echo(json.dumps(SpecialistRegistry(Settings.from_env().home).card(contract, version).as_dict(), indent=2))


@specialists_app.command("promote")
@one_line_errors
def promote(contract: str = typer.Argument(...), version: str = typer.Argument(..., help="vN"),
            reason: str = typer.Option("promoted by hand", help="recorded in the history")) -> None:
    """Recalibrate VERSION on the current dev split, then make it the contract's first rung (a running gateway
    picks it up within seconds)."""
    from smallfleet.distill.promote import promote_version

    result = promote_version(Settings.from_env(), contract, version, reason)
    typer.echo(json.dumps(result, indent=2))


@specialists_app.command("rollback")
@one_line_errors
def rollback(contract: str = typer.Argument(...),
             reason: str = typer.Option("rolled back by hand", help="recorded in the history")) -> None:
    """Return to the version promoted before the current one, or to the fleet file's own ladder."""
    from smallfleet.specialists.registry import SpecialistRegistry

    state = SpecialistRegistry(Settings.from_env().home).rollback(contract, reason)
    typer.echo(f"{contract}: now served by {state['promoted'] or 'the fleet file ladder (no specialist)'}")
