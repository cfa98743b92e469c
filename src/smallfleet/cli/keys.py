"""`smallfleet keys create|list|revoke`: API keys for the tenants of the fleet file.

A key is printed once, at creation; only its SHA-256 digest is stored (`$SMALLFLEET_HOME/keys.db`).
The gateway reads the key table on every request, so a created or revoked key counts at once.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime

import typer

from smallfleet.cli.errors import one_line_errors
from smallfleet.config.settings import Settings
from smallfleet.errors import ConfigError

keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)


def _store():  # noqa: ANN202 - a KeyStore
    from smallfleet.auth.keys import open_keys

    return open_keys(Settings.from_env())


@keys_app.command("create")
@one_line_errors
def keys_create(tenant: str = typer.Option(..., help="a tenant of the fleet file (`tenants:`)"),
                label: str = typer.Option("", help="a note to recognise the key by (who holds it)")) -> None:
    """Create a key for TENANT and print it once (it cannot be shown again)."""
    from smallfleet.config.fleet import load_fleet

    config = load_fleet(Settings.from_env().config_path)
    names = [t.name for t in config.tenants]
    if tenant not in names:
        raise ConfigError(f"no tenant {tenant!r} in the fleet file (tenants: {', '.join(names) or 'none'}); "
                          "add it under `tenants:` first")
    store = _store()
    try:
        info, key = store.create(tenant, label)
    finally:
        store.close()
    typer.echo(key)
    typer.echo(f"created key {info.id} for tenant {tenant!r}: store it now, it is not shown again", err=True)


@keys_app.command("list")
@one_line_errors
def keys_list(as_json: bool = typer.Option(False, "--json", help="one JSON object per line")) -> None:
    """Every key ever created: id, tenant, label, created, revoked (never the key itself)."""
    store = _store()
    try:
        rows = store.list()
    finally:
        store.close()
    for row in rows:
        if as_json:
            typer.echo(json.dumps(asdict(row)))
            continue
        created = datetime.fromtimestamp(row.created_at).isoformat(timespec="seconds")
        state = "active" if row.active else "revoked " + datetime.fromtimestamp(row.revoked_at).isoformat(
            timespec="seconds")
        typer.echo(f"{row.id}  tenant={row.tenant}  created={created}  {state}  {row.label}")


@keys_app.command("revoke")
@one_line_errors
def keys_revoke(key_id: str = typer.Argument(..., help="the key's id (as `keys list` shows it)")) -> None:
    """Revoke a key: the gateway refuses it from its next request."""
    store = _store()
    try:
        info = store.revoke(key_id)
    finally:
        store.close()
    typer.echo(f"revoked {info.id} (tenant {info.tenant!r})")
