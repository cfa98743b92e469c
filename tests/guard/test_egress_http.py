"""The guard in front of the real HTTP backend: what the OpenAI-compatible server receives, and what comes back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from smallfleet.backends.base import ChatMessage, Delta, Generation, SamplingParams
from smallfleet.config.fleet import FleetConfig
from smallfleet.evals.fake_upstream import FakeUpstream
from smallfleet.fleet import Fleet
from smallfleet.sim.serve import serve_in_thread
from tests.guard.test_egress import CARD, KEY, MAIL, SECRET_TEXT


def test_a_recording_server_sees_placeholders_and_the_caller_gets_the_values(tmp_path: Path) -> None:
    received: list[str] = []

    def echo(request: dict) -> str:
        received.append(json.dumps(request))
        return "Echo: " + request["messages"][-1]["content"]

    with serve_in_thread(FakeUpstream(responder=echo)) as url:
        config = FleetConfig(models=[{"kind": "openai", "id": "big", "base_url": url + "/v1", "model": "m"}],
                             guard={"egress": "redact", "categories": ["EMAIL", "CREDIT_CARD", "SECRET"]})
        fleet = Fleet.from_config(config, env={"SMALLFLEET_HOME": str(tmp_path)})
        backend = fleet.resolve("big").backend

        async def run() -> tuple[Generation, str]:
            gen = await backend.generate((ChatMessage("user", SECRET_TEXT),), SamplingParams(max_tokens=64))
            pieces = [e.text async for e in backend.stream((ChatMessage("user", SECRET_TEXT),),
                                                           SamplingParams(max_tokens=64)) if isinstance(e, Delta)]
            await fleet.aclose()
            return gen, "".join(pieces)

        gen, streamed = asyncio.run(run())
    assert len(received) == 2 and all("<CREDIT_CARD_1>" in r for r in received)
    for value in (CARD, MAIL, KEY):
        assert not any(value in r for r in received)
    assert gen.text == streamed == "Echo: " + SECRET_TEXT
