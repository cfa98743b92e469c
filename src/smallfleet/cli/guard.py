"""`smallfleet guard eval` and `smallfleet audit [verify]`: the sovereignty guard's figures and its audit.

Thin commands over `smallfleet.guard`; errors print as one line (`error: ...`, exit status 1).
"""

from __future__ import annotations

import json
from datetime import datetime

import typer

from smallfleet.cli.errors import one_line_errors
from smallfleet.config.settings import Settings

guard_app = typer.Typer(help="The sovereignty guard: detection figures.", no_args_is_help=True)
audit_app = typer.Typer(help="The egress audit: every call that left for a remote model (hash-chained).",
                        invoke_without_command=True)


@guard_app.command("eval")
@one_line_errors
def guard_eval(
    snippets: int = typer.Option(400, min=20, max=5000, help="labelled snippets (seeded; 3 in 10 hard negatives)"),
    seed: int = typer.Option(13, help="seed of the labelled set"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Precision and recall per category on a labelled set with hard negatives, and detection time per request."""
    from smallfleet.config.fleet import load_fleet
    from smallfleet.guard.evaluate import run_guard_eval

    config = load_fleet(Settings.from_env().config_path)  # the fleet's own categories, patterns and terms
    result = run_guard_eval(snippets, seed, options=config.guard.detector_options())
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


def _log():  # noqa: ANN202 - an AuditLog
    from smallfleet.guard.audit import AuditLog

    return AuditLog(Settings.from_env().home / "audit.db")


@audit_app.callback()
@one_line_errors
def audit_main(ctx: typer.Context, limit: int = typer.Option(50, min=1, help="newest rows to show"),
               as_json: bool = typer.Option(False, "--json", help="one JSON object per line")) -> None:
    """The newest audit rows: time, tenant, contract, model, policy, categories replaced, payload hash."""
    if ctx.invoked_subcommand is not None:
        return
    log = _log()
    try:
        for row in log.rows(limit):
            if as_json:
                typer.echo(json.dumps(row.as_dict()))
                continue
            when = datetime.fromtimestamp(row.ts).isoformat(timespec="seconds")
            counts = ", ".join(f"{k} {v}" for k, v in sorted(row.categories.items())) or "-"
            typer.echo(f"{row.seq:>6}  {when}  tenant={row.tenant or '-'}  contract={row.contract or '-'}  "
                       f"model={row.model}  {row.policy}  [{counts}]  sha256={row.payload_sha256[:16]}")
    finally:
        log.close()


@audit_app.command("verify")
@one_line_errors
def audit_verify() -> None:
    """Walk the hash chain: exit 0 with the head if intact, exit 1 naming the first broken row."""
    log = _log()
    try:
        result = log.verify()
    finally:
        log.close()
    if result["ok"]:
        typer.echo(f"ok: {result['rows']} rows, head {result['head']}")
        return
    typer.echo(f"error: audit broken at row {result['at']}: {result['problem']}", err=True)
    raise typer.Exit(1)
