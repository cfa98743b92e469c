"""`smallfleet bench agents-sdk`: the OpenAI Agents SDK's default model (the Responses API) runs a support agent
with two tools against a live gateway serving one local model; the run is traced under one run id.

The agent may call `lookup_order` and `refund`; the first turn must call a tool (`tool_choice="required"`:
SmolLM2 never calls one in `auto` mode), after which the SDK resets the choice to `auto`. Reported: turns,
the tool calls made (name and arguments), the final answer, seconds, and the run's trace tree (every model
call of the agent, via the `x-smallfleet-run-id` header).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

INSTRUCTIONS = ("You help customers with their orders. Look up what you need with the tools, then answer the "
                "customer in one or two sentences.")
ORDERS = {"A-17": {"status": "delivered", "total": 42.5, "delivered_on": "2026-11-20"}}


def run_agents_sdk(model: str = "smollm2-135m", question: str = "What is the status of order A-17?",
                   max_turns: int = 6) -> dict[str, Any]:
    try:
        from agents import Agent, ModelSettings, RunConfig, Runner, function_tool
        from agents.exceptions import MaxTurnsExceeded
        from agents.models.openai_provider import OpenAIProvider
    except ImportError:
        from smallfleet.errors import ConfigError

        raise ConfigError("the OpenAI Agents SDK is not installed: pip install 'openai-agents==0.24.0'") from None
    from openai import AsyncOpenAI

    from smallfleet.api.app import app_from_settings
    from smallfleet.cli.workflow import run_tree
    from smallfleet.config.settings import Settings
    from smallfleet.sim.serve import serve_in_thread
    from smallfleet.trace.sqlite import SQLiteTraceStore

    called: list[dict[str, Any]] = []

    @function_tool
    def lookup_order(order_id: str) -> str:
        """Look up an order by its id."""
        called.append({"tool": "lookup_order", "arguments": {"order_id": order_id}})
        return json.dumps(ORDERS.get(order_id, {"error": "no such order"}))

    @function_tool
    def refund(order_id: str, amount: float) -> str:
        """Refund an amount on an order."""
        called.append({"tool": "refund", "arguments": {"order_id": order_id, "amount": amount}})
        return "refunded"

    fleet = f"models:\n  - {{id: {model}, kind: llamacpp{'' if model == 'smollm2-135m' else f', model: {model}'}}}\n"
    run_id = f"agent-{int(time.time())}"
    with tempfile.TemporaryDirectory(prefix="smallfleet-agents-sdk-") as tmp:
        home = Path(tmp)
        (home / "fleet.yaml").write_text(fleet)
        settings = Settings(home=home, config_path=home / "fleet.yaml")
        with serve_in_thread(app_from_settings(settings)) as url:
            client = AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0,
                                 default_headers={"x-smallfleet-run-id": run_id})
            agent = Agent(name="support", instructions=INSTRUCTIONS,
                          model=model, tools=[lookup_order, refund],
                          model_settings=ModelSettings(tool_choice="required", max_tokens=96, temperature=0))
            config = RunConfig(model_provider=OpenAIProvider(openai_client=client), tracing_disabled=True)
            started = time.perf_counter()
            try:
                result = asyncio.run(Runner.run(agent, question, run_config=config, max_turns=max_turns))
                turns, final, stopped = len(result.raw_responses), result.final_output, "answered"
            except MaxTurnsExceeded:  # reported, not raised: the model kept calling tools
                turns, final, stopped = max_turns, None, f"max turns ({max_turns}) reached without an answer"
            seconds = time.perf_counter() - started
        store = SQLiteTraceStore(home / "traces.db")
        hops = store.run(run_id)
        store.close()
    return {"model": model, "question": question, "outcome": stopped, "turns": turns, "tool_calls": called,
            "final_output": final, "seconds": round(seconds, 2), "run_id": run_id,
            "trace_tree": run_tree(hops).splitlines() if hops else []}
