"""Tenants over HTTP: 401 without a key, 403 outside the tenant's models and contracts, 429 over its rate or
budget (OpenAI-shaped), its egress policy applied to every remote call, its traces marked with it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from smallfleet.api.app import create_app
from smallfleet.auth.keys import KeyStore
from smallfleet.auth.tenants import Tenancy
from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend
from smallfleet.config.fleet import TenantConfig
from smallfleet.contracts.spec import ContractSpec
from smallfleet.fleet import Fleet
from smallfleet.guard.budget import spent_by_window
from smallfleet.guard.egress import Guard, GuardSettings
from smallfleet.route.router import Contract, Router
from smallfleet.trace.sqlite import SQLiteTraceStore, TraceQuery
from tests.guard.test_egress import CARD, MAIL, SmallDetector

TENANTS = [
    TenantConfig(name="clinic", models=["big"], contracts=["refunds"], egress="redact"),
    TenantConfig(name="lab", models=["small"], contracts=[], requests_per_minute=3),
    TenantConfig(name="shop", budget_usd=0.5),
]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def gateway(tmp_path: Path):  # noqa: ANN201
    small = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
    big = FakeBackend(info=ModelInfo(id="big", location="remote", context_window=4096, price_per_1k_input=1.0))
    guard = Guard(GuardSettings("allow"), tmp_path / "audit.db", detector_factory=SmallDetector)  # type: ignore[arg-type]
    fleet = Fleet.of_backends([small, big], guard=guard)
    spec = ContractSpec(name="refunds", quality_target=0.9, ladder=[{"model": "big"}])
    store = SQLiteTraceStore(tmp_path / "traces.db")
    keys, clock = KeyStore(tmp_path / "keys.db"), Clock()
    tenancy = Tenancy(keys, TENANTS, store, clock=clock)
    issued = {t.name: keys.create(t.name)[1] for t in TENANTS}
    app = create_app(fleet, store, router=Router(fleet, {"refunds": Contract.load(spec)}), tenancy=tenancy)
    with TestClient(app) as client:
        yield client, issued, big, store, keys, clock, guard


def _ask(client: TestClient, key: str | None, model: str, text: str = "hello", **extra: object):  # noqa: ANN202
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
    return client.post("/v1/chat/completions", json=body, headers=headers)


def _error(reply, status: int, code: str) -> dict:  # noqa: ANN001
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code and error["message"]
    return error


def test_without_a_valid_key_every_endpoint_answers_401(gateway) -> None:  # noqa: ANN001
    client, issued, big, store, keys, _, _ = gateway
    for key in (None, "nonsense", issued["clinic"][:-2] + "zz"):
        _error(_ask(client, key, "big"), 401, "invalid_api_key")
    _error(client.get("/v1/models"), 401, "invalid_api_key")
    _error(client.post("/v1/chat/completions", content=b"{not json"), 401, "invalid_api_key")  # before the body
    reply = client.get("/v1/models", headers={"Authorization": "Basic " + issued["clinic"]})
    _error(reply, 401, "invalid_api_key")
    assert big.history == [] and store.query(TraceQuery()) == []
    assert client.get("/healthz").status_code == 200  # liveness stays open


def test_a_revoked_key_is_refused_on_the_next_request(gateway) -> None:  # noqa: ANN001
    client, issued, _, _, keys, _, _ = gateway
    assert _ask(client, issued["shop"], "small").status_code == 200
    keys.revoke(issued["shop"].split("-")[1])
    _error(_ask(client, issued["shop"], "small"), 401, "invalid_api_key")


def test_models_and_contracts_outside_the_tenant_are_403_and_not_listed(gateway) -> None:  # noqa: ANN001
    client, issued, big, store, _, clock, _ = gateway
    lab = issued["lab"]
    assert _ask(client, lab, "small").status_code == 200
    for model in ("big", "refunds"):
        error = _error(_ask(client, lab, model), 403, "model_not_allowed")
        assert error["type"] == "permission_error" and error["param"] == "model"
    assert big.history == []
    clock.now += 60  # (lab may make 3 requests a minute)
    listed = [m["id"] for m in client.get("/v1/models", headers={"Authorization": f"Bearer {lab}"}).json()["data"]]
    assert listed == ["small"]
    _error(_ask(client, lab, "no-such-model"), 400, "model_not_found")
    refused = [t for t in store.query(TraceQuery(tenant="lab")) if t.http_status == 403]
    assert len(refused) == 2 and all("hello" not in json.dumps(t.messages) for t in refused)


def test_over_the_rate_is_429_with_retry_after_and_the_bucket_refills(gateway) -> None:  # noqa: ANN001
    client, issued, _, _, _, clock, _ = gateway
    lab = issued["lab"]
    assert [_ask(client, lab, "small").status_code for _ in range(3)] == [200] * 3
    reply = _ask(client, lab, "small")
    error = _error(reply, 429, "rate_limit_exceeded")
    assert error["type"] == "rate_limit_error" and int(reply.headers["Retry-After"]) == 20
    assert _ask(client, issued["shop"], "small").status_code == 200  # other tenants are not affected
    clock.now += 20
    assert _ask(client, lab, "small").status_code == 200


def test_a_budget_is_never_passed_and_is_429_insufficient_quota_on_every_priced_path(gateway) -> None:  # noqa: ANN001
    client, issued, big, store, _, _, _ = gateway
    shop = issued["shop"]
    text = "x " * 30  # a call is held at most ~$0.14 ($1 per 1k prompt tokens, a byte each), costs ~$0.03
    spent = []
    for _ in range(30):
        reply = _ask(client, shop, "big", text)
        if reply.status_code != 200:
            break
        spent.append(spent_by_window(store, "tenant", "shop", time.time())["total"])
    assert 5 <= len(spent) < 30 and spent[-1] <= 0.5 and spent == sorted(spent)
    error = _error(reply, 429, "insufficient_quota")
    assert error["type"] == "insufficient_quota" and "tenant 'shop'" in error["message"]
    calls = len(big.history)
    _error(_ask(client, shop, "refunds", text), 429, "insufficient_quota")  # a contract does not get around it
    assert len(big.history) == calls
    assert _ask(client, shop, "small", text).status_code == 200  # a free local model costs nothing: still served
    store.settle([("tenant", "shop", "total")], 500_000_000)  # now it is spent through (a late charge, say)
    _error(_ask(client, shop, "small", text), 429, "insufficient_quota")  # then every request is refused
    store.purge(before=float("inf"))  # purging the traces does not give the budget back
    _error(_ask(client, shop, "big", text), 429, "insufficient_quota")


def test_the_tenant_policy_redacts_its_plain_and_contract_calls_and_their_traces(gateway) -> None:  # noqa: ANN001
    client, issued, big, store, _, _, guard = gateway
    text = f"Refund card {CARD} for {MAIL}"
    for model in ("big", "refunds"):
        for stream in (False, True):
            reply = _ask(client, issued["clinic"], model, text, stream=stream)
            assert reply.status_code == 200, reply.text
            assert CARD in reply.text and MAIL in reply.text  # restored for the caller (the fake echoes)
    sent = json.dumps([[m.content for m in call.messages] for call in big.history])
    assert len(big.history) == 4 and CARD not in sent and MAIL not in sent and "<CREDIT_CARD_1>" in sent
    traces = store.query(TraceQuery(tenant="clinic"))
    assert len(traces) == 4
    stored = json.dumps([t.__dict__ for t in traces], default=str)
    assert CARD not in stored and MAIL not in stored
    rows = guard.audit.rows()
    assert [r.tenant for r in rows] == ["clinic"] * 4 and all(r.categories for r in rows)
    # the same request from an `allow` tenant goes out as is: the policy is the tenant's, not global
    assert _ask(client, issued["shop"], "big", text).status_code == 200
    assert CARD in json.dumps([m.content for m in big.history[-1].messages])


def test_a_tenant_labels_only_its_own_traces(gateway) -> None:  # noqa: ANN001
    client, issued, _, _, _, _, _ = gateway
    reply = _ask(client, issued["shop"], "small")
    trace_id = reply.headers["x-smallfleet-trace-id"]
    body = {"reference": "hello"}
    for tenant, status in (("lab", 404), ("shop", 200)):
        got = client.post(f"/v1/smallfleet/traces/{trace_id}/label", json=body,
                          headers={"Authorization": f"Bearer {issued[tenant]}"})
        assert got.status_code == status, got.text
