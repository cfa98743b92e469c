"""The FastAPI application: thin route functions over the serving classes.

`create_app` takes ready-made parts (a `Fleet`, a trace store) so tests and benchmarks build an
app around fakes; `app_from_settings` builds the real one from the environment and fleet file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import Response

from smallfleet import __version__
from smallfleet.api.chat import ChatService
from smallfleet.api.errors import install_error_handlers, smallfleet_response
from smallfleet.api.limits import BodyLimit
from smallfleet.api.openapi import READING, SERVING, STREAMED, body_of, tidy
from smallfleet.api.parse import parsed_body
from smallfleet.api.serving import ServingRoutes
from smallfleet.api.protocol import ChatCompletionRequest, refuse_lone_surrogates
from smallfleet.api.responses import ResponseStore, ResponsesService
from smallfleet.api.responses_protocol import ResponsesRequest
from smallfleet.api.routed import RoutedChatService
from smallfleet.api.ui import install_ui
from smallfleet.route.live import LiveSampler
from smallfleet.route.router import Router
from smallfleet.promotion import Promotions
from smallfleet.runtime import build_router, close_router, meter_for
from smallfleet.config.fleet import load_fleet
from smallfleet.config.settings import Settings
from smallfleet.auth.keys import open_keys
from smallfleet.auth.tenants import Caller, Tenancy
from smallfleet.errors import InvalidRequest, ModelNotFound, NotFound, SmallfleetError
from smallfleet.guard.egress import egress_scope, stricter
from smallfleet.trace.record import Trace, new_trace_id, record_failure
from smallfleet.fleet import Fleet
from smallfleet.trace.store import TraceStore, open_store
from smallfleet.observe.logs import log_request
from smallfleet.observe.metrics import Metrics, multiprocess_dir
from smallfleet.observe.spans import TraceSpans, provider_from_env
from smallfleet.trace.writer import TraceWriter
from smallfleet.workflows.run import WorkflowRunner
from smallfleet.workflows.spec import WorkflowSpec

log = logging.getLogger("smallfleet.retention")


class _Body(BaseModel):
    """A smallfleet request body: unknown fields and lone UTF-16 surrogates refused (400 naming where)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _valid_text(cls, data: Any) -> Any:  # noqa: ANN401 - the body before validation
        return refuse_lone_surrogates(data)


class WorkflowRunRequest(_Body):
    """The input of a workflow run ({input} in its steps)."""

    input: str = Field(min_length=1)


class LabelRequest(_Body):
    """A reference answer: the expected output text, or a JSON value (stored as compact JSON)."""

    reference: Any
    source: str = Field("feedback", min_length=1, max_length=64)


RUN_ID_HEADER = "x-smallfleet-run-id"


def tenant_scope(who: Caller | None) -> AbstractContextManager[object]:
    """The caller's tenant policy as an egress scope (the guard applies it to every remote call); none without keys."""
    return egress_scope(who.tenant.egress, tenant=who.name) if who is not None else nullcontext()


def run_id_of(request: Request) -> str | None:
    """The agent run a request belongs to (`x-smallfleet-run-id`: letters, digits, `._:-`, at most 64), so an agent
    framework's calls show as one run in `smallfleet traces show RUN_ID`; a malformed value is a 400."""
    value = request.headers.get(RUN_ID_HEADER)
    if value is None:
        return None
    if not re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", value):
        raise InvalidRequest(f"header {RUN_ID_HEADER}: letters, digits, '.', '_', ':' and '-' only, at most 64",
                             param=RUN_ID_HEADER)
    return value


async def _retention(store: TraceStore, days: float, every_s: float = 3600.0) -> None:
    """Delete traces older than `days`, now and then every `every_s` seconds (off the event loop)."""
    while True:
        try:
            removed = await asyncio.to_thread(store.purge, time.time() - days * 86400)
            if removed["traces"]:
                log.info("retention: purged %d traces older than %g days", removed["traces"], days)
        except Exception:  # a failed purge is retried next hour; serving goes on
            log.exception("retention purge failed")
        await asyncio.sleep(every_s)


def _worker_exits() -> None:
    """A worker of a multi-process gateway leaves: its live gauges (running, waiting, breakers) stop counting."""
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


def _observe_live(metrics: Metrics, fleet: Fleet, router: Router, promotions: Promotions | None) -> None:
    """Wire what traces cannot tell into `metrics`: queues, retries, breakers, served specialist versions."""
    fleet.watch_admission(metrics.queue)
    router.state.observer = metrics
    fleet.guard.on_egress = lambda counts: [metrics.redaction(category, n) for category, n in counts.items()]

    def at_scrape() -> None:  # values that change with time alone (a breaker going half-open) or predate us
        for model_id, entry in fleet.entries().items():
            metrics.queue(model_id, entry.admission.running, entry.admission.waiting)
        for model_id, breaker in list(router.state.breakers.items()):
            metrics.breaker(model_id, breaker.state)

    metrics.scrape_hook(at_scrape)
    if promotions is not None:
        for contract, version in promotions.served_versions().items():
            metrics.serving(contract, version)
        promotions.on_serve = metrics.serving


def create_app(fleet: Fleet, store: TraceStore, router: Router | None = None,
               promotions: Promotions | None = None, refresh_s: float = 2.0,
               retention_days: float | None = None, tenancy: Tenancy | None = None,
               workflows: list[WorkflowSpec] | None = None, metrics: Metrics | None = None,
               tracer_provider: Any | None = None, log_requests: bool = False, observe: bool = True,
               admin_key: str | None = None, settings: Settings | None = None,
               max_body_bytes: int = 8 * 1024 * 1024) -> FastAPI:
    """An app serving `fleet` (and `router`'s contracts), tracing into `store`. Closes both on shutdown.
    With `promotions`, promoted specialists and recalibrated rules are picked up every `refresh_s` seconds.
    With `tenancy` (keys and tenants), every /v1 request needs a key when keys are configured. `metrics`
    (default: a fresh set) are served at /metrics; with `tracer_provider` (OpenTelemetry), every trace is also
    drawn as spans (`observe.spans`), and the provider is shut down with the app. `log_requests`: one `request`
    log line per finished request (`observe.logs`, with `serve --log-format json`). `observe=False` turns metrics off
    (`SMALLFLEET_METRICS=off`: for `bench gateway`'s side-by-side cost of observing). The dashboard at /ui
    (`api.ui`) takes `admin_key` for its actions (and for reading once API keys exist). A request body over
    `max_body_bytes` is refused with 413 as it arrives (a declared Content-Length over it before any is read)."""
    router = promotions.router if promotions is not None else router
    tenancy = tenancy or Tenancy(None, [], store)
    metrics = metrics or Metrics()
    observers = [metrics.observe] if observe else []
    observers += [TraceSpans(tracer_provider).observe] if tracer_provider is not None else []
    observers += [log_request] if log_requests else []
    writer = TraceWriter(store, observers=observers)
    chat = ChatService(fleet, writer)
    router = router or Router(fleet, {})
    if fleet.guard.meter is None:  # budgets are enforced by the guard on every priced call, over the store's ledger
        fleet.guard.meter = meter_for(store, router, tenancy.limits)
    live = LiveSampler(router, lambda trace_id, ref, source: store.add_label(trace_id, ref, source, replace=False))
    routed = RoutedChatService(router, writer, live)
    if observe:
        _observe_live(metrics, fleet, router, promotions)

    async def trace_refusal(model: str, tenant: str | None, exc: SmallfleetError, endpoint: str) -> str:
        """A request refused before serving (403, 429 quota, a Responses field not served): traced, its content
        not kept."""
        trace = Trace(id=new_trace_id(), created_at=time.time(), endpoint=endpoint, model=model, tenant=tenant,
                      messages=[{"role": "user", "content": "[withheld: refused before serving]"}])
        record_failure(trace, exc, time.perf_counter())
        await writer.append(trace)
        return trace.id

    responses = ResponsesService(ResponseStore(store), lambda req, exc, tenant: trace_refusal(
        req.model, tenant, exc, "/v1/responses"))
    runner = WorkflowRunner(router, writer.append, fleet.guard.settings.store_raw)
    created = int(time.time())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watcher = asyncio.create_task(promotions.watch(refresh_s)) if promotions is not None else None
        purger = asyncio.create_task(_retention(store, retention_days)) if retention_days is not None else None
        try:
            yield
        finally:
            for task in (watcher, purger):
                if task is not None:
                    task.cancel()
            await live.drain()
            writer.close()
            if tracer_provider is not None:
                tracer_provider.shutdown()  # flushes the spans of the last traces
            _worker_exits()
            await fleet.aclose()
            store.close()
            tenancy.close()
            close_router(router)

    # FastAPI's own OpenTelemetry instrumentation is off: the gateway draws its spans and metrics itself
    # (`observe`), and FastAPI's looks up the global providers on every request.
    app = FastAPI(title="smallfleet", version=__version__, lifespan=lifespan,
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    tidy(app, bodies=(ChatCompletionRequest, ResponsesRequest))
    install_error_handlers(app)
    app.state.fleet, app.state.store, app.state.traces, app.state.live = fleet, store, writer, live

    def stored_raw(model: str, who: Caller | None) -> bool:
        """Whether a request for `model` from `who` may be kept raw in traces: policy `allow` throughout (tenant,
        contract, fleet default) or `guard.store_raw`."""
        policy = stricter(fleet.guard.settings.default_policy, who.tenant.egress if who is not None else "allow")
        if model in router.contracts:
            policy = stricter(policy, router.contracts[model].spec.egress)
        return policy == "allow" or fleet.guard.settings.store_raw

    app.state.stored_raw = stored_raw  # for the trace of a request refused as malformed (api.errors)

    async def caller(request: Request) -> Caller | None:
        """Authentication (401) and the tenant's rate limit (429), before the body is read. The caller is kept on
        the request for the handler of a malformed body (its trace is the tenant's, under its policy)."""
        header = request.headers.get("authorization")
        # A local keys.db lookup runs here (a thread hop costs more than it); a PostgreSQL round trip does not.
        who = await asyncio.to_thread(tenancy.authenticate, header) if tenancy.needs_round_trip(header) else \
            tenancy.authenticate(header)
        request.state.caller = who
        return who

    async def complete(request: ChatCompletionRequest, who: Caller | None, endpoint: str,
                       run_id: str | None = None) -> Response:
        """The one serving path of both surfaces: the caller's tenant checks, its egress scope, then a contract's
        router or the model. `run_id` groups an agent's calls into one run (`smallfleet traces show RUN_ID`)."""
        contract = routed.serves(request.model)
        try:
            model_id = None if contract else fleet.resolve(request.model).info.id
        except ModelNotFound:
            model_id = None  # the service answers 400 naming what exists (and traces it)
        tenant = who.name if who is not None else None
        try:
            if contract or model_id is not None:
                tenancy.authorize(who, request.model, contract=contract, model_id=model_id)
                if tenancy.budgeted(who):
                    await asyncio.to_thread(tenancy.check_budget, who)
        except SmallfleetError as exc:
            return smallfleet_response(exc, await trace_refusal(request.model, tenant, exc, endpoint))
        with tenant_scope(who):
            return await (routed.create(request, tenant=tenant, endpoint=endpoint, run_id=run_id) if contract
                          else chat.create(request, tenant=tenant, endpoint=endpoint, run_id=run_id))

    # The two serving routes parse their own bodies (`api.parse`: one pass), after authentication.
    @app.post("/v1/chat/completions", responses={**STREAMED, **SERVING}, openapi_extra=body_of(ChatCompletionRequest))
    async def chat_completions(http: Request) -> Response:
        who = await caller(http)
        request = await parsed_body(http, ChatCompletionRequest)
        return await complete(request, who, "/v1/chat/completions", run_id_of(http))

    @app.post("/v1/responses", responses={**STREAMED, **SERVING}, openapi_extra=body_of(ResponsesRequest))
    async def create_response(http: Request) -> Response:
        who = await caller(http)
        request = await parsed_body(http, ResponsesRequest)
        tenant, run_id = (who.name if who is not None else None), run_id_of(http)
        return await responses.create(
            request, lambda chat_request: complete(chat_request, who, "/v1/responses", run_id), tenant,
            at_rest=stored_raw(request.model, who))

    # Both are also called straight from the middleware stack (`api.serving`), past FastAPI's routing; the body
    # limit is the outer middleware, so it holds for them too.
    app.add_middleware(ServingRoutes, routes={"/v1/chat/completions": chat_completions,
                                              "/v1/responses": create_response})
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    flows = {w.name: w for w in workflows or []}

    @app.post("/v1/smallfleet/workflows/{name}/runs", responses=SERVING)
    async def run_workflow(name: str, body: WorkflowRunRequest, who: Caller | None = Depends(caller)) -> JSONResponse:
        """Run a workflow of the fleet file: every hop under the caller's tenant checks and egress policy, traced
        under one run id. The answer is the run: status, output, hops (rung, model, latency, cost), time split."""
        spec = flows.get(name)
        if spec is None:
            raise NotFound(f"no workflow {name!r} (workflows: {', '.join(flows) or 'none in the fleet file'})",
                           param="name")
        tenant = who.name if who is not None else None
        for step in spec.steps:  # every contract and model the run would use must be the tenant's
            if step.contract is not None:
                tenancy.authorize(who, step.contract, contract=True)
            elif step.model is not None:
                tenancy.authorize(who, step.model, contract=False, model_id=fleet.resolve(step.model).info.id)
        if tenancy.budgeted(who):
            await asyncio.to_thread(tenancy.check_budget, who)
        with tenant_scope(who):
            result = await runner.run(spec, body.input, tenant)
        return JSONResponse({**result.as_dict(), "breakdown_ms": result.breakdown_ms()},
                            headers={"x-smallfleet-run-id": result.run_id})

    @app.get("/v1/responses/{response_id}", responses=READING)
    async def get_response(response_id: str, who: Caller | None = Depends(caller)) -> dict[str, Any]:
        return await responses.get(response_id, who.name if who is not None else None)

    @app.get("/v1/models", responses=READING)
    async def list_models(who: Caller | None = Depends(caller)) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": model_id, "object": "model", "created": created, "owned_by": entry.info.owned_by}
                for model_id, entry in fleet.entries().items() if tenancy.allowed(who, model_id, contract=False)
            ] + [
                {"id": name, "object": "model", "created": created, "owned_by": "smallfleet-contract",
                 "smallfleet": {"ladder": [r.model for r in c.spec.ladder
                                           if tenancy.allowed(who, r.model, contract=False)]}}
                for name, c in router.contracts.items() if tenancy.allowed(who, name, contract=True)
            ],
        }

    @app.post("/v1/smallfleet/traces/{trace_id}/label", responses=READING)
    async def label_trace(trace_id: str, body: LabelRequest, who: Caller | None = Depends(caller)) -> dict[str, Any]:
        """Attach a reference answer to a traced request (feeds `smallfleet calibrate` and reports). A tenant
        sees only its own traces."""
        found = await asyncio.to_thread(store.get, trace_id)  # off the event loop: a round trip on PostgreSQL
        if found is None or (who is not None and found.tenant != who.name):
            raise NotFound(f"no trace with id {trace_id!r}", param="trace_id")
        reference = body.reference if isinstance(body.reference, str) else json.dumps(body.reference)
        # the full id (the caller may give a unique prefix)
        await asyncio.to_thread(store.add_label, found.id, reference, body.source)
        return {"trace_id": found.id, "labelled": True}

    install_ui(app, store, settings.home if settings is not None else _home_of(store), fleet, router,
               lambda: tenancy.required, admin_key, settings)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        """Prometheus text format (see `observe.metrics`): unauthenticated, like /healthz; no user text in it."""
        await asyncio.to_thread(writer.wait_observed)  # what was answered before this scrape is in it
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "default_model": fleet.default_id,
            "models": {
                model_id: {"location": e.info.location, "running": e.admission.running, "waiting": e.admission.waiting}
                for model_id, e in fleet.entries().items()
            },
        }

    return app


def app_from_settings(settings: Settings) -> FastAPI:
    """Load the fleet file (or the embedded default), open the trace store, build the app."""
    config = load_fleet(settings.config_path)
    fleet = Fleet.from_config(config, home=settings.home)
    store = open_store(settings)
    promotions = build_router(fleet, config, settings.home, database_url=settings.database_url)
    tenancy = Tenancy(open_keys(settings), config.tenants, store)
    return create_app(fleet, store, promotions=promotions, retention_days=config.guard.retention_days,
                      tenancy=tenancy, workflows=config.workflows, tracer_provider=provider_from_env(os.environ),
                      log_requests=os.environ.get("SMALLFLEET_LOG_FORMAT") == "json",
                      observe=os.environ.get("SMALLFLEET_METRICS", "on") != "off",
                      admin_key=os.environ.get("SMALLFLEET_ADMIN_KEY") or None, settings=settings,
                      max_body_bytes=settings.max_body_bytes)


def _home_of(store: TraceStore) -> Path:
    """Where calibration and specialists live when no settings were given (tests): beside a SQLite store."""
    path = getattr(store, "path", None)
    return path.parent if isinstance(path, Path) else Settings.from_env().home


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and multi-worker serving: the app from SMALLFLEET_* settings."""
    return app_from_settings(Settings.from_env())
