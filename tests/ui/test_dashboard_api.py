"""The dashboard's API without a browser: access rules, bad input, and actions on specialists."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from smallfleet.api.app import create_app
from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend
from smallfleet.config.settings import Settings
from smallfleet.contracts.spec import ContractSpec
from smallfleet.fleet import Fleet
from smallfleet.route.router import Contract, Router
from smallfleet.specialists.registry import SpecialistRegistry
from smallfleet.trace.sqlite import SQLiteTraceStore
from tests.distill.test_registry import publish


def client(tmp_path: Path, admin_key: str | None) -> TestClient:
    store = SQLiteTraceStore(tmp_path / "traces.db")
    small = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
    fleet = Fleet.of_backends([small])
    spec = ContractSpec.model_validate({"name": "c", "output": {"choice": ["a", "b"]}, "ladder": ["small"]})
    app = create_app(fleet, store, Router(fleet, {"c": Contract.load(spec)}), admin_key=admin_key,
                     settings=Settings.from_env({"SMALLFLEET_HOME": str(tmp_path)}))
    return TestClient(app)


def test_without_an_admin_key_the_dashboard_reads_but_never_writes(tmp_path: Path) -> None:
    with client(tmp_path, None) as http:
        assert http.get("/ui").status_code == 200 and "smallfleet" in http.get("/ui").text
        assert http.get("/ui/static/vendor/uPlot.iife.min.js").status_code == 200
        assert http.get("/ui/api/overview").json()["requests"] == 0
        refused = http.post("/ui/api/contracts/c/rollback", json={})
        assert refused.status_code == 403 and "read-only" in refused.json()["error"]["message"]


def test_actions_need_the_admin_key_and_roll_back_a_promotion(tmp_path: Path) -> None:
    registry = SpecialistRegistry(tmp_path)
    publish(registry, "c")
    publish(registry, "c")
    registry.promote("c", "v1", "test")
    registry.promote("c", "v2", "test")
    with client(tmp_path, "k1") as http:
        assert http.post("/ui/api/contracts/c/rollback", json={}).status_code == 401
        assert http.get("/ui/api/contracts/c").status_code == 401  # an admin key set: reading needs it too
        key = {"authorization": "Bearer k1"}
        versions = http.get("/ui/api/contracts/c", headers=key).json()["specialists"]
        assert {v["version"]: v["promoted"] for v in versions} == {"v1": False, "v2": True}
        done = http.post("/ui/api/contracts/c/rollback", json={}, headers=key)
        assert done.status_code == 200 and done.json()["promoted"] == "v1"
        assert http.post("/ui/api/contracts/c/rollback", json={}, headers=key).json()["promoted"] is None
        nothing = http.post("/ui/api/contracts/c/rollback", json={}, headers=key)
        assert nothing.status_code == 409 and "no promoted" in nothing.json()["error"]["message"]
        odd = http.post("/ui/api/contracts/c/promote", json={"version": "../x/v1"}, headers=key)
        assert odd.status_code == 400
    assert registry.promoted("c") is None  # rolled back twice: the fleet file ladder again


def test_bad_input_gets_a_clear_error(tmp_path: Path) -> None:
    with client(tmp_path, "k1") as http:
        http.headers["authorization"] = "Bearer k1"
        assert http.get("/ui/api/overview?hours=abc").status_code == 400
        assert http.get("/ui/api/overview?hours=-1").status_code == 400
        assert http.get("/ui/api/traces?before=x").status_code == 400
        assert http.get("/ui/api/traces/nope").status_code == 404
        assert http.get("/ui/api/contracts/nope").status_code == 404
        assert http.get("/ui/static/../app.py").status_code == 404
        bad = http.post("/ui/api/contracts/c/promote", content=b"[1]")
        assert bad.status_code == 400 and bad.json()["error"]["message"]
        missing = http.post("/ui/api/contracts/c/promote", json={})
        assert missing.status_code == 400 and "version" in missing.json()["error"]["message"]
