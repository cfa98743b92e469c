"""The agent-step workload is reproducible, its gold is schema-valid and recoverable from the text, and the
simulated teacher answers it with OpenAI tool calls, wrong as often as configured."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from smallfleet.backends.base import ChatMessage, Generation, ModelInfo, SamplingParams, ToolCall
from smallfleet.backends.openai_http import OpenAIHTTPBackend, OpenAIHTTPOptions
from smallfleet.constrain.outcome import settle
from smallfleet.constrain.spec import ToolsConstraint
from smallfleet.contracts.spec import OutputSpec
from smallfleet.evals.fake_upstream import FakeUpstream
from smallfleet.sim.teacher import AgentOracle, TeacherOracle, agent_reference, reference_labels, teacher_app
from smallfleet.workload import agent_tools as at
from smallfleet.workload.agent_tools import AgentRequest
from smallfleet.workload.tickets import generate_tickets
from tests.conftest import serve_in_thread

MAIN = at.generate_agent_requests(400)
SHIFTED = at.generate_shifted_agent_requests(100)
SCHEMAS = {t.name: t.parameters for t in at.AGENT_TOOLS}


def constraint() -> ToolsConstraint:
    c = OutputSpec(**at.agent_contract_output()).constraint()
    assert isinstance(c, ToolsConstraint)
    return c


def tool_calls(calls: Sequence[tuple[str, dict[str, Any]]]) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(f"call_{i}", name, json.dumps(args)) for i, (name, args) in enumerate(calls))


def recorded(calls: list[tuple[str, dict[str, Any]]]) -> str:
    """An answer in the router's recorded form."""
    return json.dumps([{"name": name, "arguments": args} for name, args in calls])


# --- the workload ------------------------------------------------------------------------------------


def test_same_seed_same_requests_and_prefix_stable() -> None:
    again = at.generate_agent_requests(400)
    assert [(r.text, r.calls, r.reply) for r in again] == [(r.text, r.calls, r.reply) for r in MAIN]
    assert [r.text for r in at.generate_agent_requests(1000)[:400]] == [r.text for r in MAIN]
    assert [r.text for r in at.generate_shifted_agent_requests(100)] == [r.text for r in SHIFTED]
    assert [r.text for r in at.generate_agent_requests(400, seed=1)] != [r.text for r in MAIN]
    assert len({r.text for r in MAIN}) == 400 and len({r.text for r in SHIFTED}) == 100
    assert len({r.id for r in MAIN + SHIFTED}) == 500
    assert not any(r.shifted for r in MAIN) and all(r.shifted for r in SHIFTED)


def test_the_contract_offers_the_suites_tools() -> None:
    c = constraint()
    assert len(c.tools) >= 7 and c.mode == "auto"
    assert all(t.name in SCHEMAS and t.parameters == SCHEMAS[t.name] for t in c.tools)


@pytest.mark.parametrize("requests", [MAIN, SHIFTED], ids=["main", "shifted"])
def test_every_gold_call_fits_its_tools_schema_and_the_contract(requests: list[AgentRequest]) -> None:
    c = constraint()
    for r in requests:
        for name, args in r.calls:
            Draft202012Validator(SCHEMAS[name], format_checker=Draft202012Validator.FORMAT_CHECKER).validate(args)
        outcome = settle(c, "" if r.calls else r.reply, "stop", tool_calls(r.calls))
        assert outcome.valid, (r.text, outcome.problem)
        assert bool(r.calls) != bool(r.reply), r.text  # a call or a reply, never both


def _recoverable(arg: str, value: Any, text: str, aliases: bool) -> bool:
    text = text.lower()
    if isinstance(value, (int, float)):
        return str(value) in text.replace(",", "")
    if value.lower() in text:
        return True
    return aliases and any(p.lower() in text for p in at.ALIASES.get(arg, {}).get(value, ()))


@pytest.mark.parametrize("requests", [MAIN, SHIFTED], ids=["main", "shifted"])
def test_gold_arguments_are_recoverable_from_the_text(requests: list[AgentRequest]) -> None:
    shifted = requests is SHIFTED
    for r in requests:
        for name, args in r.calls:
            for arg, value in args.items():
                assert _recoverable(arg, value, r.text, aliases=shifted), (r.text, arg, value)
            if name == "get_weather" and "unit" not in args:  # optional arguments only when stated
                assert not any(w in r.text.lower() for w in ("fahrenheit", "celsius", "°", "metric", "imperial"))
            if name == "search_products" and "max_price" not in args:
                assert not any(ch.isdigit() for ch in r.text), r.text


def test_the_mix_of_needs() -> None:
    for requests in (MAIN, SHIFTED, at.generate_agent_requests(1000)):
        no_tool = sum(not r.calls for r in requests) / len(requests)
        two = sum(len(r.calls) == 2 for r in requests) / len(requests)
        assert 0.10 <= no_tool <= 0.30 and 0.02 <= two <= 0.12, (no_tool, two)
    assert {name for r in MAIN for name, _ in r.calls} == set(SCHEMAS)


def test_shifted_requests_never_repeat_the_main_set() -> None:
    main_templates = {t for ts in at.TEMPLATES.values() for t in ts}
    shifted_templates = {t for ts in at.SHIFTED_TEMPLATES.values() for t in ts}
    assert not main_templates & shifted_templates
    main_texts = {r.text for r in at.generate_agent_requests(1000)}
    assert not main_texts & {r.text for r in at.generate_shifted_agent_requests(300)}
    # Aliases occur, and the gold holds the canonical value.
    aliased = [(r, args) for r in SHIFTED for name, args in r.calls if name == "get_stock_price"
               and args["symbol"] not in r.text]
    assert aliased and all(a["symbol"].isupper() for _, a in aliased)
    assert any(p.lower() in r.text.lower() for r in SHIFTED for ps in at.CITY_ALIASES.values() for p in ps)


# --- grading -----------------------------------------------------------------------------------------


def _first(requests: list[AgentRequest], tool: str | None, calls: int = 1) -> AgentRequest:
    if tool is None:
        return next(r for r in requests if not r.calls)
    return next(r for r in requests if len(r.calls) == calls and r.calls[0][0] == tool)


def test_score_answer() -> None:
    weather = _first(MAIN, "get_weather")
    city = weather.calls[0][1]["city"]
    right = {"right_call": True, "right_tool": True, "right_decision": True}
    assert at.score_answer(at.gold_answer(weather), weather) == right
    shouted = recorded([("get_weather", {**weather.calls[0][1], "city": f"  {city.upper()} "})])
    assert at.score_answer(shouted, weather) == right  # strings compared case-insensitively, trimmed
    assert at.score_answer(recorded([("get_time", {"timezone": city})]), weather) == {
        "right_call": False, "right_tool": False, "right_decision": True}
    assert at.score_answer(recorded([("get_weather", {"city": "Atlantis"})]), weather) == {
        "right_call": False, "right_tool": True, "right_decision": True}
    assert at.score_answer("It is sunny.", weather) == {"right_call": False, "right_tool": False,
                                                        "right_decision": False}
    assert at.score_answer(None, weather) == {"right_call": False, "right_tool": False, "right_decision": False}

    chat = _first(MAIN, None)
    assert at.gold_answer(chat) == chat.reply
    assert at.score_answer("any text at all", chat) == right  # the text itself is not graded
    assert at.score_answer(recorded([("search_products", {"query": "x"})]), chat) == {
        "right_call": False, "right_tool": False, "right_decision": False}

    order = _first(MAIN, "lookup_order")
    order_id = order.calls[0][1]["order_id"]
    assert at.score_answer(recorded([("lookup_order", {"order_id": float(order_id)})]), order)["right_call"]
    assert not at.score_answer(recorded([("lookup_order", {"order_id": order_id + 1})]), order)["right_call"]

    pair = _first(MAIN, "get_weather", calls=2)
    assert at.score_answer(recorded(list(reversed(pair.calls))), pair)["right_call"]  # a set of calls
    assert at.score_answer(recorded(list(pair.calls[:1])), pair) == {"right_call": False, "right_tool": False,
                                                                     "right_decision": True}
    assert not at.score_answer(recorded([*pair.calls, pair.calls[0]]), pair)["right_call"]


# --- the simulated teacher ---------------------------------------------------------------------------


def _post_all(app: FakeUpstream, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://teacher") as client:
            out = []
            for body in bodies:
                r = await client.post("/v1/chat/completions", json=body)
                assert r.status_code == 200, r.text
                out.append(r.json())
            return out

    return asyncio.run(run())


def _tool_request(text: str, **extra: Any) -> dict[str, Any]:
    from smallfleet.constrain.remote import openai_fields

    return {"model": "teacher", "messages": [{"role": "system", "content": at.INSTRUCTIONS},
                                             {"role": "user", "content": text}],
            **openai_fields(constraint(), "teacher"), **extra}


def _recorded_answer(completion: dict[str, Any]) -> str:
    """What the router would record for this completion: the calls as a JSON list, else the text."""
    message = completion["choices"][0]["message"]
    if message.get("tool_calls"):
        return json.dumps([{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                           for c in message["tool_calls"]])
    return message["content"]


def test_the_teacher_answers_with_the_gold_calls_or_the_gold_reply() -> None:
    app = teacher_app(accuracy=1.0)
    call, pair, chat = _first(MAIN, "send_email"), _first(MAIN, "get_stock_price", 2), _first(SHIFTED, None)
    ticket = generate_tickets(1)[0]
    replies = _post_all(app, [_tool_request(call.text), _tool_request(pair.text), _tool_request(chat.text),
                              _tool_request(pair.text, parallel_tool_calls=False),
                              {"messages": [{"role": "user", "content": ticket.text}]}])
    first = replies[0]["choices"][0]
    assert first["finish_reason"] == "tool_calls" and first["message"]["content"] is None
    assert first["message"]["tool_calls"][0]["type"] == "function"
    assert json.loads(_recorded_answer(replies[0])) == json.loads(at.gold_answer(call))
    assert replies[0]["usage"]["completion_tokens"] > 0
    assert at.score_answer(_recorded_answer(replies[1]), pair)["right_call"]
    assert replies[2]["choices"][0]["message"] == {"role": "assistant", "content": chat.reply}
    assert replies[2]["choices"][0]["finish_reason"] == "stop"
    assert len(replies[3]["choices"][0]["message"]["tool_calls"]) == 1  # parallel_tool_calls: false
    assert json.loads(replies[4]["choices"][0]["message"]["content"]) == ticket.label  # the old workloads


def test_the_teachers_accuracy_knob_corrupts_the_expected_share_with_valid_mistakes() -> None:
    requests = MAIN[:150] + SHIFTED[:50]
    oracle = TeacherOracle(reference_labels(), 0.8, agent=AgentOracle(agent_reference(), 0.8))
    replies = _post_all(FakeUpstream(responder=oracle), [_tool_request(r.text) for r in requests])
    c = constraint()
    right = []
    for r, reply in zip(requests, replies, strict=True):
        message = reply["choices"][0]["message"]
        calls = tuple(ToolCall(t["id"], t["function"]["name"], t["function"]["arguments"])
                      for t in message.get("tool_calls") or [])
        assert settle(c, message["content"] or "", "stop", calls).valid, (r.text, message)  # still schema-valid
        score = at.score_answer(_recorded_answer(reply), r)
        assert score["right_call"] == oracle.agent.correct(r.text), (r.text, message)  # type: ignore[union-attr]
        right.append(score["right_call"])
    assert 0.72 <= sum(right) / len(right) <= 0.88, sum(right) / len(right)
    wrong = [at.score_answer(_recorded_answer(reply), r) for r, reply in zip(requests, replies, strict=True)]
    kinds = {(s["right_tool"], s["right_decision"]) for s in wrong if not s["right_call"]}
    assert {(True, True), (False, True), (False, False)} <= kinds  # wrong argument, wrong tool, wrong decision
    # Reproducible: the same request gets the same answer.
    assert _post_all(FakeUpstream(responder=oracle), [_tool_request(requests[0].text)])[0]["choices"] == \
        replies[0]["choices"]


def test_every_mistake_is_wrong_and_schema_valid() -> None:
    """At accuracy 0 the teacher errs on every request of both sets, always within the contract."""
    oracle, c = AgentOracle(agent_reference(), accuracy=0.0), constraint()
    requests = at.generate_agent_requests(1000) + at.generate_shifted_agent_requests(300)
    for r in requests:
        answer = oracle.answer(r.text)
        assert answer is not None
        calls = answer if isinstance(answer, list) else []
        assert settle(c, answer if isinstance(answer, str) else "", "stop", tool_calls(calls)).valid, (r.text, answer)
        assert not at.score_answer(recorded(calls) if calls else str(answer), r)["right_call"], (r.text, answer)


@pytest.mark.parametrize("stream", [False, True])
def test_the_remote_backend_reads_the_teachers_tool_calls(stream: bool) -> None:
    pair = _first(SHIFTED, "get_weather", 2)

    async def run(url: str) -> Generation:
        backend = OpenAIHTTPBackend(ModelInfo(id="teacher", location="remote", context_window=None),
                                    OpenAIHTTPOptions(base_url=url + "/v1", model="teacher", logprobs=False))
        messages = (ChatMessage("user", pair.text),)
        try:
            if stream:
                events = [e async for e in backend.stream(messages, SamplingParams(max_tokens=64), constraint())]
                assert isinstance(events[-1], Generation)
                return events[-1]
            return await backend.generate(messages, SamplingParams(max_tokens=64), constraint())
        finally:
            await backend.aclose()

    with serve_in_thread(teacher_app(accuracy=1.0)) as url:
        gen = asyncio.run(run(url))
    outcome = settle(constraint(), gen.text, gen.finish_reason, gen.tool_calls)
    assert outcome.valid and len(outcome.tool_calls) == 2
    answer = recorded([(c.name, json.loads(c.arguments)) for c in outcome.tool_calls])
    assert at.score_answer(answer, pair)["right_call"]
    assert gen.completion_tokens > 0
