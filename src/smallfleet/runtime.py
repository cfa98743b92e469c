"""The Python API: a fleet, its contracts and a trace store, ready to answer.

```python
from smallfleet.runtime import open_runtime

with open_runtime() as fleet:          # SMALLFLEET_CONFIG / SMALLFLEET_HOME, as the gateway reads them
    result = fleet.run("ticket-triage", "I was charged twice this month")
    print(result.outcome.content, result.rung, result.escalation_reason, result.cost)
```
Every run is traced exactly like a gateway request.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from smallfleet.config.fleet import FleetConfig, load_fleet
from smallfleet.config.settings import Settings
from smallfleet.errors import InvalidRequest
from smallfleet.cache.store import AnswerCache
from smallfleet.fleet import Fleet
from smallfleet.kb.library import Library
from smallfleet.guard.budget import Ledger, Limits, Meter
from smallfleet.promotion import Promotions
from smallfleet.route.live import LiveSampler
from smallfleet.route.router import RouteResult, Router, RouterState
from smallfleet.trace.record import Trace, route_trace
from smallfleet.trace.store import TraceStore, open_store
from smallfleet.workflows.run import RunResult, WorkflowRunner
from smallfleet.workflows.spec import WorkflowSpec

T = TypeVar("T")


def build_router(fleet: Fleet, config: FleetConfig, home: Path, ledger: Ledger | None = None,
                 database_url: str | None = None) -> Promotions:
    """A router over the fleet file's contracts with their calibrated rules, predictors and promoted
    specialists, wrapped in the `Promotions` that keeps them current. With a `ledger` (the trace store), the
    fleet's guard enforces the contracts' and tenants' budgets on it. With `database_url`, knowledge bases are
    read from that PostgreSQL database (else their files under `home`)."""
    router = Router(fleet, {}, RouterState())
    if ledger is not None:
        tenants = {t.name: Limits.of_config(t) for t in config.tenants}
        fleet.guard.meter = meter_for(ledger, router, tenants.get)
    digest = hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]
    promotions = Promotions(router, {c.name: c for c in config.contracts}, home, fleet_digest=digest)
    if config.knowledge_bases:
        router.library = Library(home, [k.name for k in config.knowledge_bases], promotions.encoder,
                                 database_url=database_url)
    if any(c.cache is not None for c in config.contracts):
        router.cache = AnswerCache(home / "cache.db", config.cache.max_entries)
    promotions.refresh()
    return promotions


def meter_for(ledger: Ledger, router: Router, tenant_limits: Callable[[str], Limits | None]) -> Meter:
    """The budget meter of a gateway: the limits of the contracts as currently served, and of its tenants."""

    def contract_limits(name: str) -> Limits | None:
        contract = router.contracts.get(name)
        return Limits.of_config(contract.spec) if contract is not None else None

    return Meter(ledger, contract_limits, tenant_limits)


def close_router(router: Router) -> None:
    """Close what a router opened beside the fleet: its knowledge bases and its answer cache."""
    if router.library is not None:
        router.library.close()
    if router.cache is not None:
        router.cache.close()


@dataclass
class Runtime:
    settings: Settings
    fleet: Fleet
    promotions: Promotions
    store: TraceStore
    config: FleetConfig = field(default_factory=lambda: load_fleet(None))
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    live: LiveSampler = field(init=False)

    def __post_init__(self) -> None:
        self.live = LiveSampler(self.router, lambda trace_id, ref, source: self.store.add_label(
            trace_id, ref, source, replace=False))

    @property
    def router(self) -> Router:
        return self.promotions.router

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on this runtime's own event loop (remote clients stay bound to one loop)."""
        return self.loop.run_until_complete(coro)

    async def arun(self, contract: str, text: str, *, shadow: bool = False,
                   endpoint: str = "python:run") -> tuple[RouteResult, Trace]:
        created_at, started = time.time(), time.perf_counter()
        result = await self.router.run(contract, text, shadow=shadow)
        trace = route_trace(result, text, endpoint, started, created_at, self.fleet.guard.settings.store_raw)
        self.store.append(trace)
        self.live.after(result, result.view or text, trace.id)
        return result.restored(), trace

    def run(self, contract: str, text: str, *, shadow: bool = False) -> RouteResult:
        return self.call(self.arun(contract, text, shadow=shadow))[0]

    def run_workflow(self, workflow: str | WorkflowSpec, text: str) -> RunResult:
        """Run a workflow of the fleet file (by name) or one built in Python; every hop is traced under the run's
        id (`smallfleet traces show RUN_ID`)."""
        spec = workflow if isinstance(workflow, WorkflowSpec) else self.workflow(workflow)

        async def record(trace: Trace) -> None:
            self.store.append(trace)

        runner = WorkflowRunner(self.router, record, self.fleet.guard.settings.store_raw)
        return self.call(runner.run(spec, text))

    def workflow(self, name: str) -> WorkflowSpec:
        for spec in self.config.workflows:
            if spec.name == name:
                return spec
        known = ", ".join(w.name for w in self.config.workflows) or "none in the fleet file"
        raise InvalidRequest(f"no workflow {name!r} (workflows: {known})")

    def close(self) -> None:
        self.call(self.live.drain())
        self.call(self.fleet.aclose())
        self.loop.close()
        self.store.close()
        close_router(self.router)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType] | None) -> None:
        self.close()


def open_runtime(settings: Settings | None = None, config: FleetConfig | None = None) -> Runtime:
    settings = settings or Settings.from_env()
    config = config or load_fleet(settings.config_path)
    fleet = Fleet.from_config(config, home=settings.home)
    store = open_store(settings)
    promotions = build_router(fleet, config, settings.home, store, settings.database_url)
    return Runtime(settings, fleet, promotions, store, config)
