"""The OpenAPI schema fuzzed with schemathesis (property-based, from the schema the gateway serves): no input
gets a 5xx, and every answer's status, content type and body match what the schema declares."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.checks import not_a_server_error

from smallfleet.api.app import create_app
from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend
from smallfleet.contracts.spec import ContractSpec
from smallfleet.fleet import Fleet
from smallfleet.route.router import Contract, Router
from smallfleet.trace.sqlite import SQLiteTraceStore
from smallfleet.workflows.spec import WorkflowSpec

CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance)


def _app(home: Path):  # noqa: ANN202
    small = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
    fleet = Fleet.of_backends([small])
    contract = ContractSpec.model_validate({"name": "triage", "ladder": ["small"]})  # (the fake echoes: valid)
    flow = WorkflowSpec.model_validate({"name": "flow", "steps": [{"id": "a", "contract": "triage",
                                                                   "input": "{input}"}]})
    return create_app(fleet, SQLiteTraceStore(home / "traces.db"),
                      router=Router(fleet, {"triage": Contract.load(contract)}), workflows=[flow])


class _OneLifespan:
    """The app with its lifespan left out: schemathesis starts and stops an app per operation, and a gateway is
    started once (its writer closed at shutdown takes no more traces)."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": message["type"] + ".complete"})
        await send({"type": "lifespan.shutdown.complete"})


schema = schemathesis.openapi.from_asgi("/openapi.json", _OneLifespan(_app(Path(tempfile.mkdtemp()))))


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_gets_a_5xx_and_every_answer_matches_the_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


def test_the_schema_declares_400_not_422() -> None:
    paths = schema.raw_schema["paths"]
    chat = paths["/v1/chat/completions"]["post"]["responses"]
    assert "422" not in chat and {"400", "413", "429"} <= set(chat)


@pytest.mark.parametrize("body", [b'{"model": "small", "messages": [{"role": "user", "content": "\\ud800"}]}',
                                  b'{"model": "small", "messages": [{"role": "user", "content": "a\\u0000b"}]}',
                                  b"\xff\xfe not utf-8", b"[" * 5000 + b"]" * 5000, b'{"model": 1e999}'])
def test_hostile_bodies_get_a_4xx(client, body: bytes) -> None:  # noqa: ANN001
    reply = client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert 400 <= reply.status_code < 500 or reply.status_code == 200, reply.text
    assert reply.json().get("error") or reply.status_code == 200


@pytest.mark.parametrize(("headers", "body", "says"), [
    ({"content-type": "text/plain"}, b'{"model": "small", "messages": [{"role": "user", "content": "x"}]}', "JSON"),
    ({"content-type": "application/x-www-form-urlencoded"}, b"model=small", "JSON"),
    ({"content-type": "application/json"}, b"", "Field required"),
    ({"content-type": "application/json"}, b"[]", "JSON object"),
    ({"content-type": "application/json"}, b'{"model": "small", "messages": [}', "not valid JSON"),
])
def test_what_is_not_a_json_object_is_a_400_naming_why(client, headers, body: bytes, says: str) -> None:  # noqa: ANN001
    reply = client.post("/v1/chat/completions", content=body, headers=headers)
    assert reply.status_code == 400 and says in reply.json()["error"]["message"], reply.text


def test_the_schema_keeps_same_named_classes_of_both_bodies_apart() -> None:
    components = schema.raw_schema["components"]["schemas"]
    assert sum(name.endswith("TextFormat") for name in components) == 2
