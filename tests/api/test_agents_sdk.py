"""The OpenAI Agents SDK's default model (the Responses API) runs a multi-turn, tool-using agent against the
gateway end to end: scripted on a fake model (every step checked), and on the real embedded SmolLM2."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from agents import Agent, ModelSettings, RunConfig, Runner, function_tool
from agents.models.openai_provider import OpenAIProvider
from openai import AsyncOpenAI

from smallfleet.api.app import app_from_settings, create_app
from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend
from smallfleet.config.settings import Settings
from smallfleet.fleet import Fleet
from smallfleet.trace.sqlite import SQLiteTraceStore, TraceQuery
from tests.conftest import serve_in_thread

ORDERS = {"A-17": {"status": "delivered", "total": 42.5}}


def _agent(model: str, called: list[tuple[str, dict]], **settings: object) -> Agent:
    @function_tool
    def lookup_order(order_id: str) -> str:
        """Look up an order by its id."""
        called.append(("lookup_order", {"order_id": order_id}))
        return json.dumps(ORDERS.get(order_id, {"error": "no such order"}))

    @function_tool
    def refund(order_id: str, amount: float) -> str:
        """Refund an amount on an order."""
        called.append(("refund", {"order_id": order_id, "amount": amount}))
        return "refunded"

    return Agent(name="support", instructions="Help the customer with their order.", model=model,
                 tools=[lookup_order, refund], model_settings=ModelSettings(**settings))


def _run(url: str, agent: Agent, text: str):  # noqa: ANN202 - a RunResult
    client = AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    config = RunConfig(model_provider=OpenAIProvider(openai_client=client), tracing_disabled=True)
    return asyncio.run(Runner.run(agent, text, run_config=config, max_turns=6))


def test_a_scripted_agent_calls_two_tools_then_answers(tmp_path: Path) -> None:
    fake = FakeBackend(info=ModelInfo(id="small", location="local", context_window=8192))
    store = SQLiteTraceStore(tmp_path / "traces.db")
    fake.enqueue(['<tool_call>[{"name": "lookup_order", "arguments": {"order_id": "A-17"}}]',
                  '<tool_call>[{"name": "refund", "arguments": {"order_id": "A-17", "amount": 42.5}}]',
                  "Order A-17 was delivered; I refunded 42.50."])
    called: list[tuple[str, dict]] = []
    with serve_in_thread(create_app(Fleet.of_backends([fake]), store)) as url:
        result = _run(url, _agent("small", called), "Please refund order A-17.")
        traces = SQLiteTraceStore(tmp_path / "traces.db").query(TraceQuery(limit=10))
    assert called == [("lookup_order", {"order_id": "A-17"}), ("refund", {"order_id": "A-17", "amount": 42.5})]
    assert result.final_output == "Order A-17 was delivered; I refunded 42.50."
    assert len(fake.history) == 3 and {t.endpoint for t in traces} == {"/v1/responses"}
    second = fake.history[1].messages  # the tool's output went back as a tool message
    assert second[-1].role == "tool" and json.loads(second[-1].content) == ORDERS["A-17"]
    assert second[0].role == "system" and "order" in second[0].content


@pytest.mark.model
def test_the_embedded_model_serves_every_turn_of_a_tool_using_agent(tmp_path: Path) -> None:
    """SmolLM2 is a poor agent (it may call a tool again and again: `bench agents-sdk` reports what it does); what
    is checked here is the gateway: every turn is a valid Responses answer, every call names a declared tool with
    arguments the tool accepts, and every turn is traced under the run id the client sent."""
    from agents.exceptions import MaxTurnsExceeded, ModelBehaviorError

    called: list[tuple[str, dict]] = []
    app = app_from_settings(Settings(home=tmp_path, config_path=None))
    with serve_in_thread(app) as url:
        client = AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0,
                             default_headers={"x-smallfleet-run-id": "agent-test"})
        config = RunConfig(model_provider=OpenAIProvider(openai_client=client), tracing_disabled=True)
        agent = _agent("smollm2-135m", called, tool_choice="required", max_tokens=160, temperature=0)
        try:
            result = asyncio.run(Runner.run(agent, "What is the status of order A-17?", run_config=config,
                                            max_turns=3))
            turns = len(result.raw_responses)
            assert isinstance(result.final_output, str) and result.final_output.strip()
        except MaxTurnsExceeded:  # it kept calling tools
            turns = 3
        except ModelBehaviorError as exc:  # an answer cut by max_tokens: the SDK refuses `response.incomplete`
            assert "max_output_tokens" in str(exc)
            turns = len(SQLiteTraceStore(tmp_path / "traces.db").run("agent-test"))
    assert called and all(name in ("lookup_order", "refund") for name, _ in called)
    hops = SQLiteTraceStore(tmp_path / "traces.db").run("agent-test")
    assert len(hops) == turns and all(h.status == "ok" and h.endpoint == "/v1/responses" for h in hops)
