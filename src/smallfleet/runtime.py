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
import time
from dataclasses import dataclass
from types import TracebackType

from smallfleet.config.fleet import FleetConfig, load_fleet
from smallfleet.config.settings import Settings
from smallfleet.fleet import Fleet
from smallfleet.route.router import Contract, RouteResult, Router
from smallfleet.route.thresholds import ThresholdStore
from smallfleet.trace.record import Trace, new_trace_id, record_route
from smallfleet.trace.sqlite import SQLiteTraceStore


def build_router(fleet: Fleet, config: FleetConfig, thresholds: ThresholdStore) -> Router:
    contracts = {c.name: Contract.load(c, thresholds.load(c.name)) for c in config.contracts}
    return Router(fleet, contracts)


def route_trace(result: RouteResult, text: str, endpoint: str, started: float, created_at: float) -> Trace:
    trace = Trace(id=new_trace_id(), created_at=created_at, endpoint=endpoint, model=result.contract,
                  messages=[{"role": "user", "content": text}], input=text)
    record_route(trace, result, started)
    if result.outcome is None:
        trace.status, trace.http_status, trace.error_type = "error", 502, "no_acceptable_answer"
        trace.error_message = result.escalation_reason
    return trace


@dataclass
class Runtime:
    settings: Settings
    fleet: Fleet
    router: Router
    store: SQLiteTraceStore

    async def arun(self, contract: str, text: str, *, shadow: bool = False,
                   endpoint: str = "python:run") -> tuple[RouteResult, Trace]:
        created_at, started = time.time(), time.perf_counter()
        result = await self.router.run(contract, text, shadow=shadow)
        trace = route_trace(result, text, endpoint, started, created_at)
        self.store.append(trace)
        return result, trace

    def run(self, contract: str, text: str, *, shadow: bool = False) -> RouteResult:
        return asyncio.run(self.arun(contract, text, shadow=shadow))[0]

    def close(self) -> None:
        asyncio.run(self.fleet.aclose())
        self.store.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType] | None) -> None:
        self.close()


def open_runtime(settings: Settings | None = None, config: FleetConfig | None = None) -> Runtime:
    settings = settings or Settings.from_env()
    config = config or load_fleet(settings.config_path)
    fleet = Fleet.from_config(config)
    router = build_router(fleet, config, ThresholdStore(settings.home))
    return Runtime(settings, fleet, router, SQLiteTraceStore(settings.trace_db))
