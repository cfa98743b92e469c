"""`python -m smallfleet.cli` runs the command line."""

from smallfleet.cli.main import app

app()
