"""The running fleet: one backend and one admission queue per configured model.

Built from a `FleetConfig` by a table of builders keyed by `kind` (no if/elif chain over
providers). Name resolution ("which backend serves `model`?") lives here, so the API stays thin.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from smallfleet.admission import Admission
from smallfleet.backends.base import Backend, ModelInfo
from smallfleet.config.fleet import ExtractiveModel, FakeModel, FleetConfig, LlamaCppModel, ModelSpec, OpenAIModel
from smallfleet.embeddings import SharedEncoder
from smallfleet.errors import ConfigError, ModelNotFound
from smallfleet.guard.egress import Guard, GuardedRemote, GuardSettings

DEFAULT_ALIAS = "default"


@dataclass
class FleetEntry:
    """A served model: its backend and the queue in front of it."""

    backend: Backend
    admission: Admission

    @property
    def info(self) -> ModelInfo:
        return self.backend.info


def _info(spec: ModelSpec, location: str, context_window: int | None, owned_by: str) -> ModelInfo:
    return ModelInfo(
        id=spec.id,
        location=location,  # type: ignore[arg-type]
        context_window=context_window,
        owned_by=owned_by,
        price_per_1k_input=spec.price_per_1k_input,
        price_per_1k_output=spec.price_per_1k_output,
        concurrency=spec.concurrency,
    )


def gguf_path(spec: LlamaCppModel, env: Mapping[str, str] | None = None) -> Path:
    """The GGUF file a llama.cpp model runs: its path, an installed model's file, or the embedded SmolLM2."""
    from smallfleet.backends.embedded import embedded_gguf_path

    if spec.model is not None:  # an installed model's name, resolved now (not at fleet-file load)
        from smallfleet.config.settings import Settings
        from smallfleet.models.store import ModelStore

        return ModelStore(Settings.from_env(env).home).path_of(spec.model)
    return spec.path or embedded_gguf_path()


def _build_llamacpp(spec: LlamaCppModel, env: Mapping[str, str], encoder: SharedEncoder) -> Backend:
    from smallfleet.backends.llamacpp import LlamaCppBackend, LlamaCppOptions

    path = gguf_path(spec, env)
    options = LlamaCppOptions(path=path, n_ctx=spec.n_ctx, n_threads=spec.n_threads, n_batch=spec.n_batch,
                              tool_format=spec.tool_format, loop_guard=spec.loop_guard)
    return LlamaCppBackend(spec.id, options, _info(spec, "local", spec.n_ctx, "smallfleet-llamacpp"))


def _build_openai(spec: OpenAIModel, env: Mapping[str, str], encoder: SharedEncoder) -> Backend:
    from smallfleet.backends.openai_http import OpenAIHTTPBackend, OpenAIHTTPOptions

    key = None
    if spec.api_key_env:
        key = env.get(spec.api_key_env)
        if not key:
            raise ConfigError(
                f"model {spec.id!r}: api_key_env names {spec.api_key_env}, but that environment variable is not set"
            )
    options = OpenAIHTTPOptions(
        base_url=spec.base_url,
        model=spec.model,
        api_key=key,
        timeout_s=spec.timeout_s,
        connect_timeout_s=spec.connect_timeout_s,
        logprobs=spec.logprobs,
        max_connections=max(spec.concurrency, 10),
        structured_outputs=spec.structured_outputs,
    )
    return OpenAIHTTPBackend(_info(spec, "remote", spec.context_window, "remote"), options)


def _build_fake(spec: FakeModel, env: Mapping[str, str], encoder: SharedEncoder) -> Backend:
    from smallfleet.backends.fake import FakeBackend

    return FakeBackend(
        info=_info(spec, spec.location, 4096, "smallfleet-fake"),
        latency_s=spec.latency_s,
        token_delay_s=spec.token_delay_s,
    )


def _build_extractive(spec: ExtractiveModel, env: Mapping[str, str], encoder: SharedEncoder) -> Backend:
    from smallfleet.backends.extractive import ExtractiveBackend

    return ExtractiveBackend(_info(spec, "local", None, "smallfleet-extractive"), encoder.get,
                             not_found_below=spec.not_found_below, temperature=spec.temperature)


BUILDERS: dict[str, Callable[..., Backend]] = {
    "llamacpp": _build_llamacpp,
    "openai": _build_openai,
    "fake": _build_fake,
    "extractive": _build_extractive,
}


def _guarded(backend: Backend, guard: Guard) -> Backend:
    """Every remote backend sits behind the guard: the one choke point for anything that leaves."""
    return GuardedRemote(backend, guard) if backend.info.location == "remote" else backend


class Fleet:
    """Models by id, with the default one reachable as `default`. Remote models are only ever reachable
    through the sovereignty guard (`guard.egress.GuardedRemote`), wrapped here when the fleet is built."""

    def __init__(self, entries: dict[str, FleetEntry], default_id: str, guard: Guard,
                 encoder: SharedEncoder | None = None) -> None:
        self.guard = guard
        self.encoder = encoder or SharedEncoder()  # the gateway's one sentence encoder, loaded on first use
        self._on_admission: Callable[[str, int, int], None] | None = None
        self._entries = {k: FleetEntry(_guarded(e.backend, guard), e.admission) for k, e in entries.items()}
        self.default_id = default_id

    @classmethod
    def from_config(cls, config: FleetConfig, env: Mapping[str, str] | None = None, home: Path | None = None) -> Fleet:
        """The fleet of a fleet file; its egress audit lives in `home` (default: SMALLFLEET_HOME of `env`)."""
        from smallfleet.config.settings import Settings

        env = os.environ if env is None else env
        home = home if home is not None else Settings.from_env(env).home
        guard = Guard(GuardSettings(config.guard.egress, config.guard.store_raw),
                      home / "audit.db", detector_options=config.guard.detector_options())
        encoder = SharedEncoder()
        entries: dict[str, FleetEntry] = {}
        for spec in config.models:
            entries[spec.id] = FleetEntry(BUILDERS[spec.kind](spec, env, encoder), cls._admission(spec))
        return cls(entries, config.default_id, guard, encoder)

    @classmethod
    def of_backends(cls, backends: list[Backend], max_queue: int = 32, queue_timeout_s: float = 30.0,
                    guard: Guard | None = None, encoder: SharedEncoder | None = None) -> Fleet:
        """A fleet over ready-made backends (tests, benchmarks); remote ones are guarded as in any fleet
        (by default: policy `allow`, audit kept in memory)."""
        entries = {
            b.info.id: FleetEntry(b, Admission(b.info.id, b.info.concurrency, max_queue, queue_timeout_s))
            for b in backends
        }
        return cls(entries, backends[0].info.id, guard or Guard(GuardSettings(), None), encoder)

    @staticmethod
    def _admission(spec: ModelSpec) -> Admission:
        return Admission(spec.id, spec.concurrency, spec.max_queue, spec.queue_timeout_s)

    def resolve(self, model: str) -> FleetEntry:
        """The entry serving `model`; `ModelNotFound` (HTTP 400) names what exists."""
        entry = self._entries.get(self.default_id if model == DEFAULT_ALIAS else model)
        if entry is None:
            raise ModelNotFound(
                f"The model {model!r} does not exist in this fleet. Available: {', '.join(self._entries)}",
                param="model",
            )
        return entry

    def add(self, entry: FleetEntry) -> None:
        """Serve one more model (a promoted specialist); an id already served is an error."""
        if entry.info.id in self._entries:
            raise ConfigError(f"model {entry.info.id!r} is already in the fleet")
        entry = FleetEntry(_guarded(entry.backend, self.guard), entry.admission)
        if self._on_admission is not None:
            entry.admission.on_change = self._on_admission
        self._entries = {**self._entries, entry.info.id: entry}  # replaced whole: readers never see it half-built

    def watch_admission(self, callback: Callable[[str, int, int], None]) -> None:
        """Tell `callback` (model, running, waiting) of every admission change, models added later included."""
        self._on_admission = callback
        for entry in self._entries.values():
            entry.admission.on_change = callback

    def entries(self) -> dict[str, FleetEntry]:
        return dict(self._entries)

    async def aclose(self) -> None:
        for entry in self._entries.values():
            await entry.backend.aclose()
        self.guard.close()
