"""`smallfleet chat`: one prompt, streamed from an in-process fleet model, recorded as a trace."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict

from smallfleet.backends.base import ChatMessage, Delta, Generation, SamplingParams
from smallfleet.config.fleet import load_fleet
from smallfleet.config.settings import Settings
from smallfleet.errors import SmallfleetError
from smallfleet.fleet import Fleet
from smallfleet.trace.record import Trace, new_trace_id, record_failure, record_success
from smallfleet.trace.store import open_store


async def run_chat(
    settings: Settings,
    prompt: str,
    model: str,
    system: str | None,
    max_tokens: int,
    temperature: float,
    write: Callable[[str], object],
) -> Generation:
    """Stream the answer through `write`; return the final generation."""
    config = load_fleet(settings.config_path)
    messages = ((ChatMessage("system", system),) if system else ()) + (ChatMessage("user", prompt),)
    params = SamplingParams(max_tokens=max_tokens, temperature=temperature)
    store = open_store(settings)
    fleet = Fleet.from_config(config)
    started = time.perf_counter()
    trace = Trace(
        id=new_trace_id(), created_at=time.time(), endpoint="cli:chat", model=model, stream=True,
        messages=[asdict(m) for m in messages], params={"max_tokens": max_tokens, "temperature": temperature},
    )
    try:
        entry = fleet.resolve(model)
        trace.backend_model = entry.info.id
        final: Generation | None = None
        async for event in entry.backend.stream(messages, params):
            if isinstance(event, Delta):
                write(event.text)
            else:
                final = event
        assert final is not None
        record_success(trace, final, started)
        return final
    except SmallfleetError as exc:
        record_failure(trace, exc, started)
        raise
    finally:
        store.append(trace)
        store.close()
        await fleet.aclose()
