"""The web dashboard, served by the gateway itself at `/ui`: one static page (no build step; uPlot vendored in
the package) over a small JSON API at `/ui/api/...` that reads the trace store (`observe.dashboard`) and
the live fleet.

Access: reading needs the admin key (`SMALLFLEET_ADMIN_KEY`, sent as `Authorization: Bearer ...`) once one
is set or API keys are configured, and is open on a gateway with neither (which listens on loopback unless
told otherwise); changing anything (attaching a reference label, promoting or rolling back a specialist) always
needs the admin key, so without one the dashboard is read-only.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from smallfleet.config.settings import Settings
from smallfleet.auth.tenants import Forbidden, Unauthenticated
from smallfleet.errors import Conflict, InvalidRequest, NotFound, SmallfleetError
from smallfleet.fleet import Fleet
from smallfleet.observe.dashboard import Dashboard, TraceFilter, Window
from smallfleet.route.router import Router
from smallfleet.trace.store import TraceStore

_STATIC = resources.files("smallfleet.ui") / "static"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}


ADMIN = "admin_key_required"


def install_ui(app: FastAPI, store: TraceStore, home: Path, fleet: Fleet, router: Router,
               keys_required: Callable[[], bool], admin_key: str | None, settings: Settings | None = None) -> None:
    """Add `/ui` and its API to `app` (see the module's docstring). `home` holds calibration and specialists;
    `settings` (the gateway's home and fleet file) enable promote and rollback."""
    dashboard: dict[str, Dashboard] = {}

    def reads() -> Dashboard:
        if "d" not in dashboard:
            dashboard["d"] = Dashboard(store.reader())  # opened on first use: the store exists by then
        return dashboard["d"]

    def is_admin(request: Request) -> bool:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return bool(admin_key) and hmac.compare_digest(given.encode(), (admin_key or "").encode())

    def may_read(request: Request) -> None:
        if (keys_required() or admin_key) and not is_admin(request):
            raise Unauthenticated("the dashboard needs the admin key (SMALLFLEET_ADMIN_KEY) once one is set or API "
                                  "keys are configured", code=ADMIN)

    def window(request: Request) -> Window:
        try:
            hours = float(request.query_params.get("hours", "24"))
        except ValueError:
            raise InvalidRequest("hours must be a number", param="hours") from None
        if not 0 < hours <= 24 * 366:
            raise InvalidRequest("hours must be between 0 and 8784", param="hours")
        return Window.last(hours)

    @app.get("/ui", include_in_schema=False)
    async def ui_page() -> HTMLResponse:
        return HTMLResponse((_STATIC / "index.html").read_text())

    @app.get("/ui/static/{name:path}", include_in_schema=False)
    async def ui_static(name: str) -> Response:
        parts = [p for p in name.split("/") if p]
        target = _STATIC.joinpath(*parts) if parts and ".." not in parts else None
        if target is None or not target.is_file():
            raise NotFound(f"no file {name!r}")
        return Response(target.read_bytes(), media_type=_TYPES.get(Path(name).suffix, "application/octet-stream"),
                        headers={"cache-control": "max-age=3600"})

    @app.get("/ui/api/overview", include_in_schema=False)
    async def ui_overview(request: Request) -> dict[str, Any]:
        may_read(request)
        found = await asyncio.to_thread(reads().overview, window(request))
        return {**found, "admin": is_admin(request), "can_write": bool(admin_key)}

    @app.get("/ui/api/contracts/{name}", include_in_schema=False)
    async def ui_contract(name: str, request: Request) -> dict[str, Any]:
        may_read(request)
        served = router.contracts.get(name)
        if served is None:
            raise NotFound(f"no contract {name!r}", param="name")
        out = await asyncio.to_thread(reads().contract, name, window(request))
        out["ladder"] = [{"rung": i, "model": r.model, "location": fleet.resolve(r.model).info.location,
                          "accept": r.accept.model_dump(exclude_none=True), "rule": served.rules[i].model_dump(
                              exclude_none=True)} for i, r in enumerate(served.spec.ladder)]
        out["version"] = served.version
        out["calibration"] = _calibration(home, name)
        out["specialists"] = _specialists(home, name)
        return out

    @app.get("/ui/api/traces", include_in_schema=False)
    async def ui_traces(request: Request) -> dict[str, Any]:
        may_read(request)
        q = request.query_params
        try:
            f = TraceFilter(contract=q.get("contract") or None, model=q.get("model") or None,
                            status=q.get("status") or None, reason=q.get("reason") or None,
                            before=float(q["before"]) if q.get("before") else None, limit=int(q.get("limit", "50")))
        except ValueError:
            raise InvalidRequest("before and limit must be numbers") from None
        return {"traces": await asyncio.to_thread(reads().traces, window(request), f)}

    @app.get("/ui/api/traces/{trace_id}", include_in_schema=False)
    async def ui_trace(trace_id: str, request: Request) -> dict[str, Any]:
        may_read(request)
        found = await asyncio.to_thread(reads().trace, trace_id)
        if found is None:
            raise NotFound(f"no trace {trace_id!r}", param="trace_id")
        return found

    def may_write(request: Request, what: str) -> None:
        if not admin_key:
            raise Forbidden(f"the dashboard is read-only: set SMALLFLEET_ADMIN_KEY to {what}", code=ADMIN)
        if not is_admin(request):
            raise Unauthenticated(f"to {what} needs the admin key", code=ADMIN)

    @app.post("/ui/api/contracts/{name}/promote", include_in_schema=False)
    async def ui_promote(name: str, request: Request) -> dict[str, Any]:
        """Recalibrate a specialist version on the contract's dev split, then promote it (as `smallfleet
        specialists promote`); the gateway swaps it in within seconds."""
        may_write(request, "promote a specialist")
        body = await _json_body(request)
        version = body.get("version")
        if not isinstance(version, str) or not re.fullmatch(r"v[0-9]{1,6}", version):
            raise InvalidRequest("give the version to promote as {\"version\": \"vN\"}", param="version")
        if settings is None or name not in router.contracts:
            raise NotFound(f"no contract {name!r} to promote on this gateway", param="name")
        from smallfleet.distill.promote import promote_version

        return await asyncio.to_thread(promote_version, settings, name, version, "promoted from the dashboard")

    @app.post("/ui/api/contracts/{name}/rollback", include_in_schema=False)
    async def ui_rollback(name: str, request: Request) -> dict[str, Any]:
        """Return the contract to the version promoted before the current one (or to the fleet file's ladder)."""
        may_write(request, "roll a specialist back")
        if settings is None or name not in router.contracts:
            raise NotFound(f"no contract {name!r} to roll back on this gateway", param="name")
        from smallfleet.specialists.registry import SpecialistRegistry

        try:
            state = await asyncio.to_thread(SpecialistRegistry(settings.home).rollback, name, "rolled back from "
                                            "the dashboard")
        except SmallfleetError as exc:  # nothing promoted to roll back
            raise Conflict(exc.message) from None
        return {"contract": name, "promoted": state.get("promoted")}

    @app.post("/ui/api/traces/{trace_id}/label", include_in_schema=False)
    async def ui_label(trace_id: str, request: Request) -> dict[str, Any]:
        may_write(request, "attach labels")
        body = await _json_body(request)
        if "reference" not in body:
            raise InvalidRequest("give the reference answer as {\"reference\": ...}", param="reference")
        if await asyncio.to_thread(reads().trace, trace_id) is None:
            raise NotFound(f"no trace {trace_id!r}", param="trace_id")
        reference = body["reference"] if isinstance(body["reference"], str) else json.dumps(body["reference"])
        await asyncio.to_thread(store.add_label, trace_id, reference, "dashboard")
        return {"trace_id": trace_id, "labelled": True}

    @app.get("/ui/api/fleet", include_in_schema=False)
    async def ui_fleet(request: Request) -> dict[str, Any]:
        may_read(request)
        breakers = router.state.breakers
        return {"models": [{"id": model_id, "location": e.info.location, "owned_by": e.info.owned_by,
                            "concurrency": e.admission.concurrency, "running": e.admission.running,
                            "waiting": e.admission.waiting, "max_queue": e.admission.max_queue,
                            "breaker": breakers[model_id].state if model_id in breakers else "closed"}
                           for model_id, e in fleet.entries().items()],
                "contracts": [{"name": name, "ladder": [r.model for r in c.spec.ladder], "version": c.version}
                              for name, c in router.contracts.items()]}


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise InvalidRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def _calibration(home: Path, contract: str) -> dict[str, Any] | None:
    """The last calibration report of `contract` (its curves and chosen thresholds), if it was calibrated."""
    path = home / "calibration" / f"{contract}.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return None
    return {"calibrated_at": data.get("calibrated_at"), "models": data.get("models"),
            "rungs": (data.get("report") or {}).get("rungs", [])}


def _specialists(home: Path, contract: str) -> list[dict[str, Any]]:
    """The specialist versions of `contract` with their gate metrics (newest first), which one is served."""
    from smallfleet.specialists.registry import SpecialistRegistry

    try:
        registry = SpecialistRegistry(home)
        promoted = registry.promoted(contract)
        cards = registry.versions(contract)
    except (SmallfleetError, OSError, ValueError):
        return []
    return [{"version": c.version, "kind": c.kind, "model_id": c.model_id,
             "promoted": promoted is not None and c.version == promoted.version,
             "gate": c.gate, "metrics": c.metrics, "created_at": c.created_at} for c in cards]
