"""`python -m smallfleet` runs the command line."""

from smallfleet.cli.main import app

app()
