"""Constraints on a remote rung, over real HTTP to a fake OpenAI-compatible upstream on loopback.

The upstream records each request body and answers the way a server speaking the configured API
would: the portable `{"answer": ...}` wrapper for a `response_format`, the bare choice for vLLM's
own fields.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from smallfleet.backends.base import ChatMessage, Delta, Generation, ModelInfo, SamplingParams
from smallfleet.backends.fake import FakeBackend, FakeReply
from smallfleet.backends.openai_http import OpenAIHTTPBackend, OpenAIHTTPOptions
from smallfleet.config.fleet import FleetConfig
from smallfleet.constrain.spec import ChoiceConstraint, RegexConstraint
from smallfleet.evals.fake_upstream import FakeUpstream
from smallfleet.fleet import Fleet
from smallfleet.route.router import Contract, Router
from tests.conftest import recording, serve_in_thread

CHOICES = ["billing", "tech", "other"]
WRAPPED_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string", "enum": CHOICES}},
                  "required": ["answer"], "additionalProperties": False}
MSG = (ChatMessage("user", "my router is broken"),)


def upstream(answer: str, bodies: list[dict]) -> Any:
    """Answers `answer`, wrapped as `{"answer": ...}` when the request asked for a json_schema."""
    def respond(request: dict) -> str:
        return json.dumps({"answer": answer}) if "response_format" in request else answer

    return recording(FakeUpstream(responder=respond), bodies)


def remote(url: str, api: str = "openai") -> OpenAIHTTPBackend:
    return OpenAIHTTPBackend(ModelInfo(id="big", location="remote", context_window=None),
                             OpenAIHTTPOptions(base_url=url + "/v1", model="m", structured_outputs=api))


def run(backend: OpenAIHTTPBackend, constraint, stream: bool) -> list[Delta | Generation]:
    async def go() -> list[Delta | Generation]:
        try:
            if stream:
                return [e async for e in backend.stream(MSG, SamplingParams(max_tokens=32), constraint)]
            return [await backend.generate(MSG, SamplingParams(max_tokens=32), constraint)]
        finally:
            await backend.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("stream", [False, True])
def test_portable_choice_goes_out_wrapped_and_comes_back_bare(stream: bool) -> None:
    bodies: list[dict] = []
    with serve_in_thread(upstream("tech", bodies)) as url:
        events = run(remote(url), ChoiceConstraint(tuple(CHOICES)), stream)
    fmt = bodies[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"] == WRAPPED_SCHEMA
    gen = events[-1]
    assert isinstance(gen, Generation) and gen.text == "tech" and gen.finish_reason == "stop"
    # the upstream's tokens are '{"answer":' and ' "tech"}': only the second carries the answer
    assert [lp.forced for lp in gen.logprobs] == [True, False]
    if stream:  # held back, then sent unwrapped as one delta
        assert [e.text for e in events[:-1]] == ["tech"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_reply_that_is_not_the_wrapper_is_returned_as_is(stream: bool) -> None:
    bodies: list[dict] = []
    with serve_in_thread(recording(FakeUpstream(text='{"label": "tech"}'), bodies)) as url:
        events = run(remote(url), ChoiceConstraint(tuple(CHOICES)), stream)
    assert events[-1].text == '{"label": "tech"}'


def test_portable_regex_is_an_anchored_pattern_in_the_wrapper() -> None:
    bodies: list[dict] = []
    with serve_in_thread(upstream("555-1234", bodies)) as url:
        events = run(remote(url), RegexConstraint(r"\d{3}-\d{4}"), stream=False)
    schema = bodies[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["answer"] == {"type": "string", "pattern": r"^(?:\d{3}-\d{4})$"}
    assert events[-1].text == "555-1234"


@pytest.mark.parametrize(("api", "field"), [("vllm", {"structured_outputs": {"choice": CHOICES}}),
                                            ("vllm-legacy", {"guided_choice": CHOICES}),
                                            ("llama-server", {"grammar": 'root ::= "billing" | "tech" | "other"\n'})])
@pytest.mark.parametrize("stream", [False, True])
def test_native_forms_are_sent_as_is_and_the_answer_streams_unchanged(api: str, field: dict, stream: bool) -> None:
    bodies: list[dict] = []
    with serve_in_thread(upstream("tech", bodies)) as url:
        events = run(remote(url, api), ChoiceConstraint(tuple(CHOICES)), stream)
    key = next(iter(field))
    assert bodies[0][key] == field[key] and "response_format" not in bodies[0]
    assert events[-1].text == "tech" and not any(lp.forced for lp in events[-1].logprobs)


def fleet_config(url: str, api: str) -> FleetConfig:
    return FleetConfig.model_validate({
        "models": [{"id": "small", "kind": "fake"},
                   {"id": "big", "kind": "openai", "base_url": url + "/v1", "model": "m", "structured_outputs": api,
                    "price_per_1k_output": 1.0}],
        "contracts": [{"name": "triage", "instructions": "Classify the ticket.", "output": {"choice": CHOICES},
                       "ladder": [{"model": "small", "accept": {"min_mean_logprob": -0.5}},
                                  {"model": "big", "timeout_s": 10}]}],
    })


def route(config: FleetConfig, small_reply: FakeReply | None):
    async def go():
        fleet = Fleet.from_config(config, env={})
        small = fleet.resolve("small").backend
        assert isinstance(small, FakeBackend)
        if small_reply is not None:
            small.enqueue([small_reply])  # otherwise it echoes the ticket: not one of the choices
        router = Router(fleet, {c.name: Contract.load(c) for c in config.contracts})
        try:
            return await router.run("triage", "my router is broken")
        finally:
            await fleet.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize(("api", "small_reply", "reason"), [
    ("openai", None, "invalid_output"),
    ("openai", FakeReply("billing", logprob=-3.0), "low_mean_logprob"),
    ("vllm", None, "invalid_output"),
    ("vllm", FakeReply("billing", logprob=-3.0), "low_mean_logprob"),
])
def test_a_choice_contract_escalates_to_the_remote_rung_and_gets_its_bare_answer(
        tmp_path: Path, api: str, small_reply: FakeReply | None, reason: str) -> None:
    bodies: list[dict] = []
    with serve_in_thread(upstream("tech", bodies)) as url:
        result = route(fleet_config(url, api), small_reply)
    assert result.rung == 1 and result.model == "big" and result.outcome.valid
    assert result.outcome.content == "tech"
    assert [a.status for a in result.attempts] == ["rejected", "accepted"]
    assert result.escalation_reason is not None and reason in result.escalation_reason
    assert result.cost > 0
    assert len(bodies) == 1
    if api == "openai":
        assert bodies[0]["response_format"]["json_schema"]["schema"] == WRAPPED_SCHEMA
        assert "structured_outputs" not in bodies[0]
    else:
        assert bodies[0]["structured_outputs"] == {"choice": CHOICES} and "response_format" not in bodies[0]


def test_a_remote_answer_outside_the_choices_is_invalid_not_accepted() -> None:
    bodies: list[dict] = []
    with serve_in_thread(upstream("weather", bodies)) as url:
        result = route(fleet_config(url, "openai"), None)
    assert result.outcome is None or not result.outcome.valid
    assert result.attempts[1].status != "accepted" and result.attempts[1].output == "weather"
