"""The process environment, read in one place: every SMALLFLEET_* variable the project knows."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from smallfleet.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    """Where things live and where the gateway listens."""

    home: Path
    config_path: Path | None
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str | None = None  # SMALLFLEET_DATABASE_URL: traces, budgets, keys and knowledge bases in PostgreSQL
    max_body_bytes: int = 8 * 1024 * 1024  # SMALLFLEET_MAX_BODY_BYTES: larger request bodies get 413

    @property
    def trace_db(self) -> Path:
        """The default SQLite trace store."""
        return self.home / "traces.db"

    @property
    def keys_db(self) -> Path:
        """API keys (digests only): `smallfleet keys create|list|revoke`."""
        return self.home / "keys.db"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("SMALLFLEET_HOME") or Path.home() / ".smallfleet").expanduser()
        config = env.get("SMALLFLEET_CONFIG")
        port_text = env.get("SMALLFLEET_PORT", "8080")
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigError(f"SMALLFLEET_PORT: expected an integer port, got {port_text!r}") from None
        body_text = env.get("SMALLFLEET_MAX_BODY_BYTES", str(8 * 1024 * 1024))
        try:
            max_body = int(body_text)
            if max_body < 1024:
                raise ValueError
        except ValueError:
            raise ConfigError(f"SMALLFLEET_MAX_BODY_BYTES: expected a number of bytes of at least 1024, got "
                              f"{body_text!r}") from None
        return cls(
            home=home,
            config_path=Path(config).expanduser() if config else None,
            host=env.get("SMALLFLEET_HOST", "127.0.0.1"),
            port=port,
            database_url=_database_url(env.get("SMALLFLEET_DATABASE_URL")),
            max_body_bytes=max_body,
        )


def _database_url(url: str | None) -> str | None:
    """A PostgreSQL URL (`postgresql://user:password@host:port/db`, or a libpq keyword string), or None."""
    if not url:
        return None
    if "://" in url and not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"SMALLFLEET_DATABASE_URL: only PostgreSQL is supported (postgresql://...), got "
                          f"{url.split('://', 1)[0]}://...")
    return url
