"""Errors of the model store, pulls and GGUF reading: each a one-line message the CLI prints as is."""

from __future__ import annotations

from smallfleet.errors import ConfigError, SmallfleetError


class ModelNotInstalled(ConfigError):
    """A fleet file or command names a model that is not in the local store."""

    code = "model_not_installed"


class NotGGUF(ConfigError):
    """A file given as a model is not a (readable) GGUF file."""

    code = "not_gguf"


class PullError(SmallfleetError):
    """Obtaining a model's parts failed (pip could not fetch a part, a part is malformed)."""

    type = "pull_error"
    code = "pull_failed"


class ChecksumMismatch(PullError):
    """The assembled file's SHA-256 or size differs from the catalogue's: the file is refused."""

    code = "checksum_mismatch"
