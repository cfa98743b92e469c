"""The one choke point: every path to a remote model goes through the guard, under the policy in force."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from smallfleet.backends.base import ChatMessage, Delta, Generation, ModelInfo, SamplingParams
from smallfleet.backends.fake import FakeBackend
from smallfleet.config.fleet import FleetConfig, load_fleet
from smallfleet.contracts.spec import ContractSpec
from smallfleet.fleet import Fleet
from smallfleet.guard.audit import AuditLog
from smallfleet.guard.detect import Detector
from smallfleet.guard.egress import EgressRefused, Guard, GuardedRemote, GuardSettings, egress_scope
from smallfleet.route.router import Contract, Router
from smallfleet.trace.record import route_trace

CARD, MAIL, KEY = "4111 1111 1111 1111", "ann.lee@example.org", "sk-proj-Zq8xR2mK9vL4pT7wQ1nB6yH3"
SECRET_TEXT = f"Refund card {CARD} and mail {MAIL}; our key is {KEY}"


class SmallDetector(Detector):
    def __init__(self, **_: object) -> None:
        super().__init__(categories=["EMAIL", "CREDIT_CARD", "SECRET"])


def _guard(tmp_path: Path, policy: str = "allow") -> Guard:
    return Guard(GuardSettings(policy), tmp_path / "audit.db", detector_factory=SmallDetector)  # type: ignore[arg-type]


def _remote(name: str = "big") -> FakeBackend:
    return FakeBackend(info=ModelInfo(id=name, location="remote", context_window=4096, price_per_1k_input=0.01))


def _sent(backend: FakeBackend) -> str:
    return json.dumps([[m.content for m in call.messages] for call in backend.history])


def _assert_clean(text: str) -> None:
    for value in (CARD, MAIL, KEY):
        assert value not in text


def test_every_remote_model_of_a_fleet_sits_behind_the_guard(tmp_path: Path) -> None:
    config = FleetConfig(models=[{"kind": "fake", "id": "small"}, {"kind": "fake", "id": "big", "location": "remote"}])
    fleet = Fleet.from_config(config, env={"SMALLFLEET_HOME": str(tmp_path)})
    assert isinstance(fleet.resolve("big").backend, GuardedRemote)
    assert not isinstance(fleet.resolve("small").backend, GuardedRemote)
    fleet.add(type(fleet.resolve("big"))(_remote("later"), fleet.resolve("big").admission))
    assert isinstance(fleet.resolve("later").backend, GuardedRemote)  # added later: guarded too
    asyncio.run(fleet.aclose())


def test_plain_requests_are_redacted_out_and_restored_back(tmp_path: Path) -> None:
    remote = _remote()
    fleet = Fleet.of_backends([remote], guard=_guard(tmp_path, "redact"))
    backend = fleet.resolve("big").backend
    gen = asyncio.run(backend.generate((ChatMessage("user", SECRET_TEXT),), SamplingParams()))
    _assert_clean(_sent(remote))
    assert "<CREDIT_CARD_1>" in _sent(remote) and gen.text == SECRET_TEXT  # the echo comes back restored

    async def streamed() -> str:
        out = []
        async for event in backend.stream((ChatMessage("user", SECRET_TEXT),), SamplingParams()):
            out.append(event.text if isinstance(event, Delta) else "")
            if isinstance(event, Generation):
                assert event.text == SECRET_TEXT
        return "".join(out)

    assert asyncio.run(streamed()) == SECRET_TEXT
    rows = fleet.guard.audit.rows()
    assert [r.categories for r in rows] == [{"CREDIT_CARD": 1, "EMAIL": 1, "SECRET": 1}] * 2
    _assert_clean(json.dumps([r.as_dict() for r in rows]))
    assert fleet.guard.audit.verify()["ok"]


def test_local_only_sends_nothing_and_a_stricter_scope_is_never_loosened(tmp_path: Path) -> None:
    remote = _remote()
    backend = Fleet.of_backends([remote], guard=_guard(tmp_path, "local_only")).resolve("big").backend
    with pytest.raises(EgressRefused, match="local_only"):
        asyncio.run(backend.generate((ChatMessage("user", "hello"),), SamplingParams()))
    with egress_scope("allow"), pytest.raises(EgressRefused):  # a caller cannot loosen the fleet's default...
        asyncio.run(backend.generate((ChatMessage("user", "hello"),), SamplingParams()))
    allow = Fleet.of_backends([remote], guard=_guard(tmp_path / "b")).resolve("big").backend
    with egress_scope("local_only"), egress_scope("allow"), pytest.raises(EgressRefused):  # ...nor an inner scope
        asyncio.run(allow.generate((ChatMessage("user", "hello"),), SamplingParams()))
    assert remote.history == []


def _router(tmp_path: Path, egress: str, shadow_rate: float = 0.0) -> tuple[Router, FakeBackend, FakeBackend]:
    small = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
    big = _remote()
    fleet = Fleet.of_backends([small, big], guard=_guard(tmp_path))
    spec = ContractSpec(name="refunds", instructions="Summarise.", egress=egress, quality_target=0.9,
                        shadow_rate=shadow_rate, ladder=[{"model": "small", "samples": 2, "accept": {"min_mean_logprob": -0.01}},
                                                     {"model": "big"}])
    return Router(fleet, {"refunds": Contract.load(spec)}), small, big


def test_routed_redact_traffic_keeps_placeholders_everywhere_but_the_answer(tmp_path: Path) -> None:
    router, small, big = _router(tmp_path, "redact")
    big.enqueue([f"Refunded <CREDIT_CARD_1>, wrote to <EMAIL_1>."])
    result = asyncio.run(router.run("refunds", SECRET_TEXT, shadow=True))
    assert result.model == "big"  # the small rung's answers (mean log-prob -0.05) are never good enough
    _assert_clean(_sent(big) + _sent(small))  # the local rung saw the same redacted view
    assert result.outcome is not None and result.outcome.content == "Refunded <CREDIT_CARD_1>, wrote to <EMAIL_1>."
    caller = result.restored()
    assert caller.outcome is not None and caller.outcome.content == f"Refunded {CARD}, wrote to {MAIL}."
    trace = route_trace(result, SECRET_TEXT, "test", 0.0, 0.0)
    _assert_clean(json.dumps(trace.messages) + (trace.input or "") + json.dumps(trace.attempts))
    assert "<SECRET_1>" in (trace.input or "")
    assert router.fleet.guard.audit.rows()[-1].contract == "refunds"


def test_live_checks_and_agreement_samples_pass_the_guard_too(tmp_path: Path) -> None:
    router, small, big = _router(tmp_path, "local_only")
    result = asyncio.run(router.run("refunds", SECRET_TEXT, shadow=True))
    assert result.outcome is not None and result.model == "small"  # kept: no higher rung may answer
    assert big.history == [] and len(small.history) == 2  # the answer and its agreement sample, both local
    answer, reason = asyncio.run(router.ask_top("refunds", result.view or ""))
    assert answer is None and reason == "egress_local_only" and big.history == []
    _assert_clean(_sent(small))


def test_the_audit_detects_a_changed_or_deleted_row(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")
    for i in range(4):
        log.append(tenant="acme", contract=None, model="big", policy="redact", categories={"EMAIL": i},
                   payload_sha256=f"{i:064x}")
    assert log.verify() == {"ok": True, "rows": 4, "head": log.rows()[-1].hash}
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        log._db.execute("UPDATE egress SET model = 'x' WHERE seq = 2")
    log.close()
    db = sqlite3.connect(tmp_path / "audit.db")
    db.execute("DROP TRIGGER egress_no_update")
    db.execute("UPDATE egress SET categories = '{\"EMAIL\": 9}' WHERE seq = 2")
    db.commit()
    assert AuditLog(tmp_path / "audit.db").verify()["at"] == 2  # (opening the log put the triggers back)
    db.execute("DROP TRIGGER egress_no_update")
    db.execute("DROP TRIGGER egress_no_delete")
    db.execute("UPDATE egress SET categories = '{\"EMAIL\": 1}' WHERE seq = 2")
    db.execute("DELETE FROM egress WHERE seq = 3")
    db.commit()
    broken = AuditLog(tmp_path / "audit.db").verify()
    assert broken["ok"] is False and broken["at"] == 4 and "missing" in broken["problem"]


def test_a_value_sent_as_a_placeholder_is_stored_as_one_even_where_detection_would_miss_it(tmp_path: Path) -> None:
    """The answer quotes a redacted value in a new context where the detector does not see it (here: a category
    this detector has no recogniser for): the trace holds the placeholder the remote model saw, because the scrub
    starts from the table the request went out with."""
    from smallfleet.guard.detect import Finding
    from smallfleet.guard.redact import Redaction

    guard = _guard(tmp_path, "redact")
    name = "Xiaoling Wang"
    sent = Redaction()
    assert sent.placeholder(Finding("PERSON", 0, len(name), name, 0.5, "cell")) == "<PERSON_1>"
    stored = [{"role": "user", "content": f"{name};{MAIL}"}]
    messages, (output,) = asyncio.run(guard.scrub(stored, f"Received: {name} ({MAIL})", known=sent))
    assert messages[0]["content"] == "<PERSON_1>;<EMAIL_1>" and output == "Received: <PERSON_1> (<EMAIL_1>)"
    unaided, (output,) = asyncio.run(guard.scrub(stored, f"Received: {name}"))
    assert name in output  # (without the table this detector keeps the name: the table is what removed it)


def test_the_audited_payload_digest_is_what_asdict_gave() -> None:
    from dataclasses import asdict

    from smallfleet.backends.base import ToolCall
    from smallfleet.guard.audit import payload_digest
    from smallfleet.guard.egress import _payload

    sent = (ChatMessage("user", "hi"), ChatMessage("assistant", "", (ToolCall("a", "f", "{}"),)),
            ChatMessage("tool", "x", tool_call_id="a"))
    assert payload_digest(_payload("m", sent)) == payload_digest({"model": "m", "messages": [asdict(m) for m in sent]})
    from dataclasses import fields  # a field added to ChatMessage must be added to what the audit hashes too

    assert set(_payload("m", sent)["messages"][0]) == {f.name for f in fields(ChatMessage)}
