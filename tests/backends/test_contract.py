"""The same contract suite runs against every backend: fake, embedded llama.cpp, remote HTTP."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator

import pytest

from smallfleet.backends.base import Backend, ChatMessage, Delta, Generation, ModelInfo, SamplingParams
from smallfleet.backends.fake import FakeBackend
from smallfleet.backends.openai_http import OpenAIHTTPBackend, OpenAIHTTPOptions
from smallfleet.evals.fake_upstream import FakeUpstream
from tests.conftest import serve_in_thread

PROMPT = (ChatMessage("user", "Tell me a long story about a quick brown fox who jumps over a lazy dog."),)


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    with serve_in_thread(FakeUpstream(text="Once upon a time a quick brown fox jumped over the lazy dog and ran")) as url:
        yield url + "/v1"


@pytest.fixture(params=["fake", "llamacpp", "openai_http"])
def backend(request: pytest.FixtureRequest, upstream_url: str) -> Backend:
    if request.param == "fake":
        return FakeBackend()
    if request.param == "llamacpp":
        return request.getfixturevalue("embedded")
    return OpenAIHTTPBackend(ModelInfo(id="remote", location="remote", context_window=None),
                             OpenAIHTTPOptions(base_url=upstream_url, model="fake"))


def collect(backend: Backend, params: SamplingParams) -> tuple[list[Delta], Generation]:
    async def run() -> tuple[list[Delta], Generation]:
        deltas: list[Delta] = []
        final = None
        async for event in backend.stream(PROMPT, params):
            if isinstance(event, Delta):
                assert final is None, "no delta may follow the final Generation"
                deltas.append(event)
            else:
                final = event
        assert final is not None
        await close_remote(backend)
        return deltas, final

    return asyncio.run(run())


async def close_remote(backend: Backend) -> None:
    if isinstance(backend, OpenAIHTTPBackend):  # its session belongs to this test's event loop
        await backend.aclose()


def generate(backend: Backend, params: SamplingParams) -> Generation:
    async def run() -> Generation:
        try:
            return await backend.generate(PROMPT, params)
        finally:
            await close_remote(backend)

    return asyncio.run(run())


def test_streamed_deltas_add_up_to_the_final_text(backend: Backend) -> None:
    deltas, final = collect(backend, SamplingParams(max_tokens=24, temperature=0))
    assert final.text
    assert "".join(d.text for d in deltas) == final.text
    assert sum(len(d.logprobs) for d in deltas) == len(final.logprobs)


def test_generation_carries_logprobs_counts_and_timings(backend: Backend) -> None:
    gen = generate(backend, SamplingParams(max_tokens=24, temperature=0))
    assert gen.completion_tokens == len(gen.logprobs) > 0
    assert all(math.isfinite(lp.logprob) and lp.logprob <= 0 for lp in gen.logprobs)
    assert gen.prompt_tokens > 0
    assert gen.finish_reason in ("stop", "length")
    assert 0 <= gen.timings.ttft_s <= gen.timings.total_s
    assert gen.model == backend.info.id


def test_max_tokens_cuts_the_answer_and_says_length(backend: Backend) -> None:
    gen = generate(backend, SamplingParams(max_tokens=3, temperature=0))
    assert gen.completion_tokens == 3
    assert gen.finish_reason == "length"


def test_stop_sequence_ends_the_answer_before_it(backend: Backend) -> None:
    full = generate(backend, SamplingParams(max_tokens=20, temperature=0)).text
    words = full.split()
    assert len(words) >= 4, full
    stop = " " + words[3]
    deltas, final = collect(backend, SamplingParams(max_tokens=20, temperature=0, stop=(stop,)))
    assert final.text == full[: full.index(stop)]
    assert stop not in "".join(d.text for d in deltas)
    assert final.finish_reason == "stop"
