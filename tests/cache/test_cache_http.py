"""The cache and grounded contracts over HTTP: the cache header, tenants kept apart, an empty knowledge base."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from smallfleet.api.app import create_app
from smallfleet.auth.keys import KeyStore
from smallfleet.auth.tenants import Tenancy
from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend, FakeReply
from smallfleet.cache.store import AnswerCache
from smallfleet.config.fleet import TenantConfig
from smallfleet.contracts.spec import ContractSpec
from smallfleet.fleet import Fleet
from smallfleet.guard.egress import Guard, GuardSettings
from smallfleet.kb.library import Library
from smallfleet.route.router import Contract, Router
from smallfleet.trace.sqlite import SQLiteTraceStore
from tests.guard.test_egress import SmallDetector


def test_cache_header_and_tenant_isolation_over_http(tmp_path: Path) -> None:
    small = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
    small.enqueue([FakeReply("billing", logprob=-0.1), FakeReply("tech", logprob=-0.1)])
    fleet = Fleet.of_backends([small], guard=Guard(GuardSettings(), tmp_path / "audit.db",
                                                  detector_factory=SmallDetector))  # type: ignore[arg-type]
    store = SQLiteTraceStore(tmp_path / "traces.db")
    keys = KeyStore(tmp_path / "keys.db")
    tenants = [TenantConfig(name="acme"), TenantConfig(name="globex")]
    issued = {t.name: keys.create(t.name)[1] for t in tenants}
    triage = ContractSpec.model_validate({"name": "triage", "output": {"choice": ["billing", "tech"]},
                                          "cache": {"ttl_s": 60}, "ladder": ["small"]})
    helpdesk = ContractSpec.model_validate({"name": "helpdesk", "grounding": {"knowledge_base": "help"},
                                            "ladder": ["small"]})
    router = Router(fleet, {"triage": Contract.load(triage), "helpdesk": Contract.load(helpdesk)},
                    library=Library(tmp_path, ["help"]))
    router.cache = AnswerCache(tmp_path / "cache.db")
    app = create_app(fleet, store, router=router, tenancy=Tenancy(keys, tenants, store))
    body = {"model": "triage", "messages": [{"role": "user", "content": "I was charged twice"}]}
    with TestClient(app) as client:
        def post(tenant: str, payload: dict = body):  # noqa: ANN202
            return client.post("/v1/chat/completions", json=payload,
                               headers={"Authorization": f"Bearer {issued[tenant]}"})

        first, again, other = post("acme"), post("acme"), post("globex")
        responses = client.post("/v1/responses", json={"model": "triage", "input": "I was charged twice"},
                                headers={"Authorization": f"Bearer {issued['acme']}"})
        empty = post("acme", {"model": "helpdesk", "messages": [{"role": "user", "content": "hi"}]})
    assert first.headers["x-smallfleet-cache"] == "miss"
    assert again.headers["x-smallfleet-cache"] == "exact"
    assert again.json()["choices"][0]["message"]["content"] == "billing"
    assert other.headers["x-smallfleet-cache"] == "miss" and other.json()["choices"][0]["message"]["content"] == "tech"
    assert len(small.history) == 2
    assert responses.status_code == 200 and responses.headers["x-smallfleet-cache"] == "exact"  # one cache, both APIs
    assert responses.json()["output"][0]["content"][0]["text"] == "billing"
    assert empty.status_code == 503
    assert empty.json()["error"]["code"] == "knowledge_base_unavailable"
    assert "smallfleet kb add help" in empty.json()["error"]["message"]
    failed = SQLiteTraceStore(tmp_path / "traces.db").get(empty.headers["x-smallfleet-trace-id"])  # traced too
    assert failed is not None and failed.http_status == 503 and failed.contract == "helpdesk"
