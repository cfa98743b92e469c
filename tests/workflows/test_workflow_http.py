"""Workflows over HTTP: a run as one request, under the caller's tenant (its contracts, models and egress policy)."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from smallfleet.api.app import create_app
from smallfleet.auth.keys import KeyStore
from smallfleet.auth.tenants import Tenancy
from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend
from smallfleet.config.fleet import TenantConfig
from smallfleet.contracts.spec import ContractSpec
from smallfleet.fleet import Fleet
from smallfleet.guard.egress import Guard, GuardSettings
from smallfleet.route.router import Contract, Router
from smallfleet.trace.sqlite import SQLiteTraceStore
from smallfleet.workflows.spec import WorkflowSpec
from tests.guard.test_egress import CARD, SmallDetector

FLOW = WorkflowSpec.model_validate({"name": "twice", "steps": [
    {"id": "first", "contract": "echo", "input": "{input}"},
    {"id": "second", "model": "big", "prompt": "again: {first}"}]})


def _app(tmp_path: Path):  # noqa: ANN202
    small = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
    big = FakeBackend(info=ModelInfo(id="big", location="remote", context_window=4096))
    fleet = Fleet.of_backends([small, big], guard=Guard(GuardSettings(), tmp_path / "audit.db",
                                                       detector_factory=SmallDetector))  # type: ignore[arg-type]
    store = SQLiteTraceStore(tmp_path / "traces.db")
    keys = KeyStore(tmp_path / "keys.db")
    tenants = [TenantConfig(name="clinic", egress="redact"), TenantConfig(name="lab", models=["small"])]
    issued = {t.name: keys.create(t.name)[1] for t in tenants}
    spec = ContractSpec(name="echo", quality_target=0.5, ladder=[{"model": "small"}])
    app = create_app(fleet, store, router=Router(fleet, {"echo": Contract.load(spec)}),
                     tenancy=Tenancy(keys, tenants, store), workflows=[FLOW])
    return app, issued, big, store


def test_a_run_over_http_is_traced_and_keeps_to_the_tenants_policy(tmp_path: Path) -> None:
    app, issued, big, store = _app(tmp_path)
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {issued['clinic']}"}
        reply = client.post("/v1/smallfleet/workflows/twice/runs", headers=headers, json={"input": f"card {CARD}"})
        assert reply.status_code == 200, reply.text
        run = reply.json()
        hops = store.run(run["run_id"])
    assert run["status"] == "ok" and run["output"] == f"again: card {CARD}"  # the caller gets the values back
    assert [h["step"] for h in run["hops"]] == ["first", "second"] and reply.headers["x-smallfleet-run-id"]
    assert CARD not in json.dumps([m.content for m in big.history[0].messages])  # redacted on the way out
    assert [h.step for h in hops] == ["first", "second"] and all(h.tenant == "clinic" for h in hops)
    assert CARD not in json.dumps([h.__dict__ for h in hops], default=str)  # and at rest


def test_runs_are_refused_like_requests(tmp_path: Path) -> None:
    app, issued, big, _ = _app(tmp_path)
    with TestClient(app) as client:
        lab = {"Authorization": f"Bearer {issued['lab']}"}
        assert client.post("/v1/smallfleet/workflows/twice/runs", json={"input": "x"}).status_code == 401
        forbidden = client.post("/v1/smallfleet/workflows/twice/runs", headers=lab, json={"input": "x"})
        assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "model_not_allowed"
        missing = client.post("/v1/smallfleet/workflows/nope/runs", headers=lab, json={"input": "x"})
        assert missing.status_code == 404 and "twice" in missing.json()["error"]["message"]
        bad = client.post("/v1/smallfleet/workflows/twice/runs", headers=lab, json={"text": "x"})
        assert bad.status_code == 400
    assert big.history == []
