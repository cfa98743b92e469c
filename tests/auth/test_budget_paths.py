"""Every remote call made for a tenant is paid from its budget and kept to its policy: answers that fail their
schema, streams the client abandons, agreement samples, live quality checks, malformed requests' traces."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from smallfleet.api.app import create_app
from smallfleet.api.chat import ChatService
from smallfleet.api.protocol import ChatCompletionRequest
from smallfleet.auth.keys import KeyStore
from smallfleet.auth.tenants import Tenancy, TokenBucket
from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend
from smallfleet.config.fleet import TenantConfig
from smallfleet.contracts.spec import ContractSpec
from smallfleet.fleet import Fleet
from smallfleet.guard.budget import spent_by_window
from smallfleet.guard.egress import Guard, GuardSettings, egress_scope
from smallfleet.route.router import Contract, Router
from smallfleet.trace.sqlite import SQLiteTraceStore, TraceQuery
from smallfleet.trace.writer import TraceWriter
from tests.guard.test_egress import CARD, MAIL, SmallDetector

PRICED = ModelInfo(id="big", location="remote", context_window=4096, price_per_1k_input=1.0, price_per_1k_output=1.0)


def _build(tmp: Path, tenants: list[TenantConfig], contracts: list[ContractSpec] = ()):  # noqa: ANN202
    small = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
    big = FakeBackend(info=PRICED)
    fleet = Fleet.of_backends([small, big], guard=Guard(GuardSettings(), tmp / "audit.db",
                                                       detector_factory=SmallDetector))  # type: ignore[arg-type]
    store = SQLiteTraceStore(tmp / "traces.db")
    keys = KeyStore(tmp / "keys.db")
    issued = {t.name: keys.create(t.name)[1] for t in tenants}
    router = Router(fleet, {c.name: Contract.load(c) for c in contracts})
    app = create_app(fleet, store, router=router, tenancy=Tenancy(keys, tenants, store))
    return app, issued, big, store, fleet


def _ask(client: TestClient, key: str, model: str, text: str, **extra: object):  # noqa: ANN202
    return client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                       json={"model": model, "messages": [{"role": "user", "content": text}], **extra})


def _spent(store: SQLiteTraceStore, tenant: str) -> float:
    return spent_by_window(store, "tenant", tenant, time.time())["total"]


def test_an_answer_that_fails_its_schema_is_still_paid_for(tmp_path: Path) -> None:
    app, issued, big, store, _ = _build(tmp_path, [TenantConfig(name="shop", budget_usd=0.45)])
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}}
    with TestClient(app) as client:
        big.enqueue(["not json " * 30])
        assert _ask(client, issued["shop"], "big", "y " * 40, response_format=schema, max_tokens=100
                    ).status_code == 502
        [trace] = store.query(TraceQuery(tenant="shop"))
        assert trace.cost and trace.cost > 0.05 and _spent(store, "shop") == pytest.approx(trace.cost)
        # what is left cannot pay for another call of up to 100 tokens and its prompt: refused before it leaves
        assert _ask(client, issued["shop"], "big", "y " * 40, response_format=schema, max_tokens=100
                    ).status_code == 429
    assert len(big.history) == 1


def test_agreement_samples_are_each_charged(tmp_path: Path) -> None:
    spec = ContractSpec(name="vote", quality_target=0.9, ladder=[{"model": "big", "samples": 4}])
    app, issued, big, store, _ = _build(tmp_path, [TenantConfig(name="shop")], [spec])
    with TestClient(app) as client:
        reply = _ask(client, issued["shop"], "vote", "z " * 10)
        spent = _spent(store, "shop")
    assert reply.status_code == 200 and len(big.history) == 4
    attempt = reply.json()["smallfleet"]["attempts"][0]
    assert attempt["prompt_tokens"] > 0 and attempt["cost"] == PRICED.cost_of(attempt["prompt_tokens"],
                                                                               attempt["completion_tokens"])
    first = big.history[0]
    assert all(call.messages == first.messages for call in big.history)  # four identical calls, four charged
    assert abs(spent - attempt["cost"]) < 1e-12 and float(reply.headers["x-smallfleet-cost"]) > 0


def test_live_checks_are_charged_to_the_tenant_and_stop_with_its_budget(tmp_path: Path) -> None:
    spec = ContractSpec(name="triage", quality_target=0.9, shadow_rate=1.0, max_tokens=20,
                        ladder=[{"model": "small", "accept": {"min_mean_logprob": -1.0}}, {"model": "big"}])
    app, issued, big, store, _ = _build(tmp_path, [TenantConfig(name="shop", budget_usd=0.2)], [spec])
    with TestClient(app) as client:
        statuses = []
        for _ in range(8):
            statuses.append(_ask(client, issued["shop"], "triage", "x " * 10).status_code)
            deadline = time.monotonic() + 5
            while app.state.live.pending and time.monotonic() < deadline:
                time.sleep(0.01)
        spent = _spent(store, "shop")
        answered = store.query(TraceQuery(tenant="shop", limit=100))
    assert statuses == [200] * 8  # the answers are local and free: they are served
    assert 1 <= len(big.history) < 8 and 0 < spent <= 0.2  # the checks stopped before passing the budget
    assert sum(t.cost or 0 for t in answered) == 0


def test_an_abandoned_stream_is_paid_for_and_keeps_no_raw_values(tmp_path: Path) -> None:
    _, _, big, store, fleet = _build(tmp_path, [TenantConfig(name="clinic", egress="redact")])
    writer = TraceWriter(store)
    chat = ChatService(fleet, writer)
    big.enqueue(["word " * 200])

    async def main() -> None:
        req = ChatCompletionRequest.model_validate({"model": "big", "stream": True, "messages": [
            {"role": "user", "content": f"card {CARD} mail {MAIL} " + "x " * 300}]})
        with egress_scope("redact", tenant="clinic"):
            response = await chat.create(req, tenant="clinic")
        body = response.body_iterator
        for _ in range(5):
            await anext(body)  # the client reads a few chunks, then goes away
        await body.aclose()

    asyncio.run(main())
    writer.close()
    [trace] = store.query(TraceQuery())
    assert trace.error_type == "client_disconnected" and trace.cost and trace.cost > 0.1
    assert CARD not in json.dumps(trace.__dict__, default=str) and MAIL not in json.dumps(trace.messages)
    # the ledger keeps what the upstream may have billed: the prompt's bytes and the output received, as tokens
    assert trace.cost <= _spent(store, "clinic") < PRICED.cost_of(2000, 4096)


def test_a_malformed_request_from_a_redact_tenant_is_traced_as_its_without_the_values(tmp_path: Path) -> None:
    app, issued, _, store, _ = _build(tmp_path, [TenantConfig(name="clinic", egress="redact")])
    with TestClient(app) as client:
        reply = _ask(client, issued["clinic"], "big", f"card {CARD}", temperature=99, user=MAIL)
        [trace] = store.query(TraceQuery())
    assert reply.status_code == 400
    assert trace.tenant == "clinic"
    stored = json.dumps(trace.__dict__, default=str)
    assert CARD not in stored and MAIL not in stored


def test_a_rate_below_one_a_minute_still_lets_a_request_through() -> None:
    now = [0.0]
    bucket = TokenBucket(0.5, clock=lambda: now[0])
    assert bucket.take() == 0
    assert bucket.take() == 120  # one request per two minutes
    now[0] += 120
    assert bucket.take() == 0


def test_responses_of_redacted_traffic_never_rest_on_disk_even_when_continued(tmp_path: Path) -> None:
    """A malformed Responses body from a redact tenant keeps nothing raw; a conversation begun under a redact contract
    stays in memory when it is continued on an `allow` model."""
    import sqlite3

    secret = ContractSpec(name="secret", quality_target=0.5, egress="redact", ladder=[{"model": "small"}])
    tenants = [TenantConfig(name="clinic", egress="redact"), TenantConfig(name="shop")]
    app, issued, _, store, _ = _build(tmp_path, tenants, [secret])
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {issued['clinic']}"}
        bad = client.post("/v1/responses", headers=headers, json={"model": "big", "input": f"card {CARD}",
                                                                  "temperature": 5})
        shop = {"Authorization": f"Bearer {issued['shop']}"}
        first = client.post("/v1/responses", headers=shop, json={"model": "secret", "input": f"card {CARD}"})
        second = client.post("/v1/responses", headers=shop, json={
            "model": "small", "input": "and again?", "previous_response_id": first.json()["id"]})
        continued = client.get(f"/v1/responses/{second.json()['id']}", headers=shop)
    assert bad.status_code == 400 and first.status_code == 200 and second.status_code == 200
    assert continued.status_code == 200  # kept, in memory
    db = sqlite3.connect(tmp_path / "traces.db")
    assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 0
    [params] = db.execute("SELECT params FROM traces WHERE http_status = 400").fetchone()
    assert CARD not in params and "withheld" in params
