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
        return cls(
            home=home,
            config_path=Path(config).expanduser() if config else None,
            host=env.get("SMALLFLEET_HOST", "127.0.0.1"),
            port=port,
        )
