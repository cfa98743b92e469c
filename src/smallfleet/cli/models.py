"""`smallfleet models [list|pull|add]`: the local model store, the catalogue and the fleet's models.

Thin commands over `smallfleet.models`; errors print as one line (`error: ...`, exit status 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from smallfleet.cli.errors import one_line_errors
from smallfleet.config.fleet import FleetConfig, load_fleet
from smallfleet.config.settings import Settings
from smallfleet.errors import ConfigError
from smallfleet.models.add import add_local
from smallfleet.models.catalogue import CatalogueEntry, lookup
from smallfleet.models.gguf_info import read_gguf_info
from smallfleet.models.pull import pull
from smallfleet.models.store import InstalledModel, ModelStore

models_app = typer.Typer(help="Local models (pull, add, list) and the fleet's models and contracts.",
                         invoke_without_command=True)


@models_app.callback()
@one_line_errors
def models_main(ctx: typer.Context) -> None:
    """Installed models, catalogue models not installed yet, then the fleet's models and contracts."""
    if ctx.invoked_subcommand is None:
        _list()


@models_app.command("list")
@one_line_errors
def models_list() -> None:
    """Installed models, catalogue models not installed yet, then the fleet's models and contracts."""
    _list()


@models_app.command("pull")
@one_line_errors
def models_pull(
    name: str = typer.Argument(..., help="catalogue model name (see `smallfleet models`)"),
    force: bool = typer.Option(False, "--force", help="fetch and verify again even if installed"),
) -> None:
    """Fetch a catalogue model, verify its SHA-256 and register it in the local store."""
    entry = lookup(name)
    store = ModelStore(Settings.from_env().home)
    existing = store.get(entry.name)
    if existing is not None and not force and existing.file_ok() and existing.size == entry.size:
        typer.echo(f"{entry.name} is already installed: {existing.path} (use --force to pull again)")
    else:
        label = ("registering " if entry.embedded else "pulling ") + entry.name
        with typer.progressbar(length=entry.size, label=label, file=sys.stderr) as bar:
            result = pull(entry, store, force=force, progress=bar.update)
        model = result.model
        typer.echo(f"installed {model.name}: {_mb(model.size)} MB, sha256 {model.sha256} verified, at {model.path}")
    typer.echo(f"license: {entry.license} (upstream {entry.upstream}); source: {entry.source}")
    typer.echo("fleet-file entry:")
    typer.echo(_fleet_entry(entry.name))


@models_app.command("add")
@one_line_errors
def models_add(
    path: Path = typer.Argument(..., help="a GGUF file on this machine"),
    name: str = typer.Option(None, "--name", help="model name (default: the file name without .gguf)"),
    copy: bool = typer.Option(False, "--copy", help="copy the file into the model store instead of using it in place"),
    force: bool = typer.Option(False, "--force", help="replace a model already registered under this name"),
) -> None:
    """Register a local GGUF file (checked, hashed, its metadata read) so fleet files can name it."""
    store = ModelStore(Settings.from_env().home)
    path = path.expanduser()
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    read_gguf_info(path)  # a file that is not a GGUF is refused before any progress is shown
    with typer.progressbar(length=max(path.stat().st_size, 1), label=f"hashing {path.name}", file=sys.stderr) as bar:
        model = add_local(path, store, name=name, copy=copy, force=force, progress=bar.update)
    typer.echo(f"added {model.name}: {_mb(model.size)} MB, {model.quantisation or 'quantisation unknown'}, "
               f"context {model.context_length or 'unknown'}, license {model.license or 'unknown'}, at {model.path}")
    typer.echo("fleet-file entry:")
    typer.echo(_fleet_entry(model.name))


def _list() -> None:
    settings = Settings.from_env()
    config = load_fleet(settings.config_path)  # a bad fleet file fails before anything is printed
    store = ModelStore(settings.home)
    installed = store.installed()
    typer.echo("installed models:" if installed else "installed models: none")
    for model in installed:
        typer.echo(_installed_line(model))
    missing = [entry for entry in store.catalogue if store.get(entry.name) is None]
    if missing:
        typer.echo("catalogue (not installed):")
        for entry in missing:
            typer.echo(_catalogue_line(entry))
    typer.echo("fleet:")
    _fleet_lines(config)


def _installed_line(model: InstalledModel) -> str:
    state = "" if model.file_ok() else "  [file missing or changed]"
    return (f"  {model.name:<28} {_mb(model.size):>8} MB  {model.quantisation or '?':<7} "
            f"ctx {model.context_length or '?':<6} {model.license or 'license ?':<12} {model.path}{state}")


def _catalogue_line(entry: CatalogueEntry) -> str:
    return (f"  {entry.name:<28} {_mb(entry.size):>8} MB  {entry.quantisation:<7} ctx {entry.context_length:<6} "
            f"{entry.license:<12} pull with: smallfleet models pull {entry.name}")


def _fleet_lines(config: FleetConfig) -> None:
    """The fleet's models (default starred) and contracts, as `smallfleet models` always printed them."""
    for spec in config.models:
        marker = "*" if spec.id == config.default_id else " "
        typer.echo(f"{marker} {spec.id:<28} {spec.kind}")
    for contract in config.contracts:
        typer.echo(f"  {contract.name:<28} contract: {' -> '.join(r.model for r in contract.ladder)}")


def _fleet_entry(name: str) -> str:
    return f"  - id: {name}\n    kind: llamacpp\n    model: {name}"


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f}"
