"""`smallfleet run WORKFLOW INPUT` and the tree view of a run (`smallfleet traces show RUN_ID`)."""

from __future__ import annotations

import json

import typer

from smallfleet.cli.errors import one_line_errors
from smallfleet.config.settings import Settings
from smallfleet.trace.record import Trace


@one_line_errors
def run_command(workflow: str = typer.Argument(..., help="a workflow of the fleet file (`workflows:`)"),
                text: str = typer.Argument(..., help="the run's input ({input} in the steps)"),
                as_json: bool = typer.Option(False, "--json", help="print the whole run as one JSON object")) -> None:
    """Run a workflow in-process: every hop is traced under one run id (`smallfleet traces show RUN_ID`)."""
    from smallfleet.runtime import open_runtime

    with open_runtime() as runtime:
        result = runtime.run_workflow(workflow, text)
    if as_json:
        typer.echo(json.dumps({**result.as_dict(), "breakdown_ms": result.breakdown_ms()}, ensure_ascii=False))
    else:
        output = result.output if isinstance(result.output, str) else json.dumps(result.output, ensure_ascii=False)
        typer.echo(output if result.status == "ok" else "")
        typer.echo(f"run {result.run_id}: {result.status}, {len(result.hops)} hops, {result.latency_ms:.0f} ms "
                   f"(smallfleet traces show {result.run_id})", err=True)
    if result.status != "ok":
        typer.echo(f"error: {result.error}", err=True)
        raise typer.Exit(1)


def run_tree(hops: list[Trace]) -> str:
    """A run's hops as a tree: step, kind and target, rung and model, latency, cost, status, output."""
    total_ms = sum(h.latency_ms or 0 for h in hops)
    cost = sum(h.cost or 0 for h in hops)
    lines = [f"run {hops[0].run_id}  {len(hops)} hops  {total_ms:.0f} ms in hops  ${cost:.6f}"]
    for i, hop in enumerate(hops):
        branch = "└─" if i == len(hops) - 1 else "├─"
        if hop.contract is not None:
            what = f"contract {hop.contract}  rung {hop.rung} {_answered_by(hop)}"
        elif hop.backend_model is not None:
            what = f"model {hop.backend_model}"
        else:
            what = f"tool {hop.model}"
        output = (hop.output or hop.error_message or "").replace("\n", " ")
        lines.append(f"{branch} {hop.step or hop.endpoint:<14} {what:<48} {hop.latency_ms or 0:>8.1f} ms  ${hop.cost or 0:.6f}  "
                     f"{hop.status}  {output[:60]}")
    return "\n".join(lines)


def _answered_by(hop: Trace) -> str:
    accepted = [a for a in hop.attempts if a.get("status") == "accepted"]
    model = accepted[-1].get("model") if accepted else None
    reason = f" ({hop.escalation_reason})" if hop.escalation_reason else ""
    return f"{model or '-'}{reason}"


def show_run(run_id: str) -> bool:
    """Print the run's tree if `run_id` names a run; False if it does not."""
    from smallfleet.trace.store import open_store

    store = open_store(Settings.from_env())
    try:
        hops = store.run(run_id)
    finally:
        store.close()
    if not hops:
        return False
    typer.echo(run_tree(hops))
    return True
