"""The embedded SmolLM2 backend on the real model: template, determinism, logprobs, limits."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from smallfleet.backends.base import ChatMessage, SamplingParams
from smallfleet.backends.llamacpp import log_partition
from smallfleet.errors import ContextLengthExceeded

Q = (ChatMessage("user", "What is the capital of France? Answer in one sentence."),)


def test_prompt_is_rendered_with_the_gguf_chat_template(embedded) -> None:
    text = embedded.llama.detokenize(embedded.render(Q), special=True).decode()
    assert "<|im_start|>user\nWhat is the capital of France? Answer in one sentence.<|im_end|>" in text
    assert text.rstrip().endswith("<|im_start|>assistant")


def test_greedy_decoding_is_deterministic_and_answers(embedded) -> None:
    params = SamplingParams(max_tokens=24, temperature=0)
    a = asyncio.run(embedded.generate(Q, params))
    b = asyncio.run(embedded.generate(Q, params))
    assert a.text == b.text
    assert "Paris" in a.text


def test_same_seed_same_sample(embedded) -> None:
    params = SamplingParams(max_tokens=16, temperature=1.0, seed=1234)
    a = asyncio.run(embedded.generate(Q, params))
    b = asyncio.run(embedded.generate(Q, params))
    assert a.text == b.text


def test_top_logprobs_are_sorted_and_greedy_pick_is_the_top_one(embedded) -> None:
    gen = asyncio.run(embedded.generate(Q, SamplingParams(max_tokens=8, temperature=0, top_logprobs=3)))
    for lp in gen.logprobs:
        assert len(lp.top) == 3
        values = [t.logprob for t in lp.top]
        assert values == sorted(values, reverse=True)
        assert lp.top[0].logprob == pytest.approx(lp.logprob)


def test_prompt_longer_than_the_context_is_refused(embedded) -> None:
    long = (ChatMessage("user", "word " * 5000),)
    with pytest.raises(ContextLengthExceeded) as err:
        asyncio.run(embedded.generate(long, SamplingParams(max_tokens=4)))
    assert "maximum context length is 2048" in err.value.message


def test_prompt_plus_max_tokens_over_the_context_is_refused(embedded) -> None:
    with pytest.raises(ContextLengthExceeded) as err:
        asyncio.run(embedded.generate(Q, SamplingParams(max_tokens=5000)))
    assert err.value.param == "max_tokens"


def test_log_partition_matches_a_reference_log_softmax() -> None:
    logits = np.array([1.0, 2.0, 3.0, -1.0], dtype=np.float32)
    ref = logits - np.log(np.exp(logits).sum())
    assert float(logits[1]) - log_partition(logits) == pytest.approx(float(ref[1]), abs=1e-6)
