"""Embedded backend: a GGUF model run in-process by llama.cpp (through llama-cpp-python).

The prompt is rendered with the chat template stored in the GGUF metadata. The decoding loop is
ours but thin: llama.cpp evaluates and samples (its own sampler chain reads the logits buffer),
and the KV cache is reused across requests that share a prompt prefix. Each step we read the
logits to record the chosen token's log-probability, and under a constraint we first overwrite
the logits of forbidden tokens with -inf (llguidance mask), then feed any tokens the grammar
forces in one batch. One generation runs at a time on the backend's own worker thread:
llama.cpp contexts are not re-entrant.
"""

from __future__ import annotations

import ctypes
import random
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smallfleet.backends.base import (
    Backend,
    ChatMessage,
    Delta,
    Generation,
    ModelInfo,
    SamplingParams,
    Timings,
    TokenLogprob,
    TopLogprob,
)
from smallfleet.backends.textstream import TextAssembler
from smallfleet.constrain.compile import GrammarCache
from smallfleet.constrain.loopguard import ExitTokens, LoopGuard
from smallfleet.constrain.masking import MatcherCache, TokenMasker
from smallfleet.constrain.prompting import for_local_model
from smallfleet.constrain.spec import Constraint, JsonObjectConstraint, JsonSchemaConstraint, ToolsConstraint
from smallfleet.constrain.toolformat import HERMES_FORMAT, SMALLFLEET_FORMAT, ToolAnswer, ToolFormat, detect_format
from smallfleet.constrain.vocab import is_special, llguidance_tokenizer
from smallfleet.backends.threaded import iterate_in_thread
from smallfleet.errors import BackendError, ConfigError, ContextLengthExceeded


@dataclass(frozen=True)
class LlamaCppOptions:
    """Engine settings for one embedded model."""

    path: Path
    n_ctx: int = 4096
    n_threads: int | None = None
    n_batch: int = 512
    loop_guard: bool = True  # steer constrained answers out of repeating cycles (constrain/loopguard.py)
    tool_format: str = "auto"  # "auto" (from the chat template), "hermes" or "smallfleet"
    lora_path: Path | None = None  # a llama.cpp LoRA adapter GGUF applied on top (a fine-tuned specialist)


def log_partition(logits: np.ndarray) -> float:
    """log(sum(exp(logits))), computed stably: log-probability = logit - log_partition."""
    peak = float(logits.max())
    return peak + float(np.log(np.exp(logits - peak, dtype=np.float32).sum(dtype=np.float64)))


class LlamaCppBackend(Backend):
    """A GGUF model served in-process."""

    def __init__(self, model_id: str, options: LlamaCppOptions, info: ModelInfo | None = None) -> None:
        import llama_cpp  # imported here: importing it loads the native library
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        if not options.path.is_file():
            raise ConfigError(f"model {model_id!r}: GGUF file not found: {options.path}")
        self._lib = llama_cpp
        self._llm = llama_cpp.Llama(
            model_path=str(options.path),
            n_ctx=options.n_ctx,
            n_threads=options.n_threads,
            n_batch=options.n_batch,
            verbose=False,
            **({"lora_path": str(options.lora_path)} if options.lora_path is not None else {}),
        )
        if options.lora_path is not None and not getattr(self._llm, "_lora_adapter", None):
            # llama-cpp-python does not raise on an adapter it could not load; the first decode would crash
            raise ConfigError(f"model {model_id!r}: LoRA adapter {options.lora_path} does not fit {options.path.name}")
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ConfigError(f"model {model_id!r}: {options.path.name} has no chat template in its metadata")
        vocab_model = self._llm._model
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=vocab_model.token_get_text(self._llm.token_eos()),
            bos_token=vocab_model.token_get_text(self._llm.token_bos()),
        )
        self._vocab = vocab_model.vocab
        self._n_vocab = self._llm.n_vocab()
        self._n_ctx = self._llm.n_ctx()
        self._pieces: dict[int, bytes] = {}
        self.loop_guard = options.loop_guard  # public: benchmarks compare with and without it
        self.tool_format = self._pick_tool_format(model_id, template, options.tool_format)
        self._grammars = GrammarCache(fmt=self.tool_format)
        self._matchers: MatcherCache | None = None  # built on the first constrained request (~0.2-1 s)
        self._exits: ExitTokens | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llamacpp-{model_id}")
        self.info = info or ModelInfo(id=model_id, location="local", context_window=self._n_ctx)

    @property
    def llama(self):  # noqa: ANN201 - the llama_cpp.Llama object, for benchmarks side by side
        """The underlying `llama_cpp.Llama` (benchmarks compare against it on the same weights)."""
        return self._llm

    def _single_special(self, text: str) -> bool:
        """`text` is one user-defined special token (rendered as its text, unlike control tokens)."""
        ids = self._llm.tokenize(text.encode(), add_bos=False, special=True)
        if len(ids) != 1:
            return False
        attr = self._lib.llama_vocab_get_attr(self._vocab, ids[0])
        return bool(attr & self._lib.LLAMA_TOKEN_ATTR_USER_DEFINED) and is_special(attr, text.encode(), self._lib)

    def _pick_tool_format(self, model_id: str, template: str, wanted: str) -> ToolFormat:
        """The model's own tool format, read from its chat template and vocabulary (or as configured)."""
        if wanted == "smallfleet":
            return SMALLFLEET_FORMAT
        tags = (HERMES_FORMAT.open_tag, HERMES_FORMAT.close_tag)
        found = detect_format(template, {tag for tag in tags if self._single_special(tag)})
        if wanted == "hermes" and found is not HERMES_FORMAT:
            raise ConfigError(f"model {model_id!r}: its chat template or vocabulary has no <tool_call> tool format")
        return found

    def render(self, messages: tuple[ChatMessage, ...], constraint: Constraint | None = None,
               instructions: bool = True) -> list[int]:
        """Prompt token ids for `messages` under the model's own chat template (with the constraint's
        instructions unless `instructions` is False)."""
        given = for_local_model(messages, constraint if instructions else None, self.tool_format)
        prompt = self._formatter(messages=given.messages, tools=given.tools).prompt
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def stream(
        self, messages: tuple[ChatMessage, ...], params: SamplingParams, constraint: Constraint | None = None
    ) -> AsyncIterator[Delta | Generation]:
        def produce(emit: Callable[[Delta | Generation], None], cancel: threading.Event) -> None:
            self._generate_sync(messages, params, constraint, emit, cancel)

        return iterate_in_thread(self._executor, produce)

    def tokenizer_bridge(self) -> object:
        """The llguidance view of this model's vocabulary (built once, on first use: 0.2-1 s)."""
        if self._matchers is None:
            eog = [t for t in range(self._n_vocab) if self._lib.llama_vocab_is_eog(self._vocab, t)]
            with warnings.catch_warnings():  # llama.cpp aliases deprecated once per token
                warnings.simplefilter("ignore", DeprecationWarning)
                tokenizer = llguidance_tokenizer(self._llm, eog)
                self._exits = ExitTokens.from_pieces([self._piece(t) for t in range(self._n_vocab)], set(eog))
            self._matchers = MatcherCache(tokenizer)
        return self._matchers.tokenizer

    def _masker(self, constraint: Constraint | None) -> TokenMasker | None:
        """A fresh token masker for `constraint`."""
        if constraint is None:
            return None
        self.tokenizer_bridge()
        assert self._matchers is not None
        grammar = self._grammars.grammar(constraint, "constraint")
        return TokenMasker(self._matchers.matcher(grammar), self._n_vocab)

    def _guard(self, constraint: Constraint | None) -> LoopGuard | None:
        """A loop guard for one constrained answer (JSON-aware for JSON and tool calls), if enabled."""
        if not self.loop_guard or self._exits is None:
            return None
        json_like = isinstance(constraint, (JsonSchemaConstraint, JsonObjectConstraint, ToolsConstraint))
        return LoopGuard(self._exits, json=json_like)

    def _start(self, prompt: list[int]) -> None:
        """Evaluate `prompt`, reusing the KV cache for the prefix it shares with the previous request."""
        llm = self._llm
        shared = 0
        for cached, new in zip(llm.input_ids[: llm.n_tokens], prompt, strict=False):  # common prefix
            if cached != new:
                break
            shared += 1
        shared = min(shared, len(prompt) - 1)  # re-evaluate at least one token to get fresh logits
        llm.n_tokens = shared
        llm.eval(prompt[shared:])

    def _generate_sync(
        self,
        messages: tuple[ChatMessage, ...],
        params: SamplingParams,
        constraint: Constraint | None,
        emit: Callable[[Delta | Generation], None],
        cancel: threading.Event,
    ) -> None:
        started = time.perf_counter()
        masker = self._masker(constraint)
        prompt = self.render(messages, constraint, params.constraint_instructions)
        max_tokens = self._check_fits(len(prompt), params.max_tokens)
        llm, lib, ctx = self._llm, self._lib, self._llm._ctx
        llm.set_seed(params.seed if params.seed is not None else random.getrandbits(31))
        # A constrained answer ends where its grammar ends; stop strings would cut it invalid.
        assembler = TextAssembler(stop=params.stop if masker is None else ())
        tools = ToolAnswer(self.tool_format, constraint.mode) if isinstance(constraint, ToolsConstraint) else None
        guard = self._guard(constraint) if masker is not None else None
        deltas: Callable[[Delta], list[Delta]] = (lambda d: [d]) if tools is None else tools.push
        logprobs: list[TokenLogprob] = []
        finish = "length"
        first_token_at: float | None = None
        try:
            self._start(prompt)
            sampler = llm._init_sampler(temp=params.temperature, top_p=params.top_p, top_k=0, min_p=0.0,
                                        repeat_penalty=1.0)
            while len(logprobs) < max_tokens and not cancel.is_set():
                logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx.ctx, -1), shape=(self._n_vocab,))
                log_z = log_partition(logits)  # of the model's own distribution, before any mask
                if masker is not None:
                    masker.apply(logits)
                    if guard is not None and (tools is None or tools.is_call):
                        guard.steer(logits)
                token = sampler.sample(ctx, -1)
                if first_token_at is None:
                    first_token_at = time.perf_counter()
                if lib.llama_vocab_is_eog(self._vocab, token):
                    finish = "stop"
                    break
                new = [(token, self._logprob(logits, log_z, token, params.top_logprobs))]
                if masker is not None:
                    masker.consume(token)
                    room = max_tokens - len(logprobs) - 1
                    new += [(t, TokenLogprob(token=self._piece_text(t), logprob=0.0, forced=True))
                            for t in (masker.forced() if room > 0 and not masker.stopped else [])[:room]]
                for tok, logprob in new:
                    logprobs.append(logprob)
                    piece = self._piece(tok)
                    if guard is not None:
                        guard.observe(tok, piece)
                    delta = assembler.push(piece, logprob)
                    for out in deltas(delta) if delta is not None else ():
                        emit(out)
                if assembler.stopped or (masker is not None and masker.stopped):
                    finish = "stop"
                    break
                llm.eval([tok for tok, _ in new])
        except (RuntimeError, ValueError) as exc:  # llama.cpp decode failures surface as these
            raise BackendError(f"{self.info.id}: generation failed: {exc}") from exc
        tail = assembler.finish()
        for out in deltas(tail) if tail is not None else ():
            emit(out)
        calls: tuple = ()
        if tools is not None:
            held, calls = tools.finish(assembler.text)
            for out in held:
                emit(out)
        ended = time.perf_counter()
        emit(
            Generation(
                model=self.info.id,
                text=assembler.text,
                finish_reason=finish,  # type: ignore[arg-type]
                prompt_tokens=len(prompt),
                completion_tokens=len(logprobs),
                logprobs=tuple(logprobs),
                timings=Timings(ttft_s=(first_token_at or ended) - started, total_s=ended - started,
                                mask_ms=tuple(masker.mask_ms) if masker is not None else ()),
                tool_calls=calls,
                loop_steers=guard.steered if guard is not None else 0,
            )
        )

    def _check_fits(self, prompt_tokens: int, max_tokens: int | None) -> int:
        room = self._n_ctx - prompt_tokens
        if room <= 0:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {self._n_ctx} tokens, "
                f"but the messages use {prompt_tokens} tokens.",
                param="messages",
            )
        if max_tokens is None:
            return room
        if max_tokens > room:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {self._n_ctx} tokens. However, you requested "
                f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, {max_tokens} in the "
                "completion). Please reduce the length of the messages or the completion.",
                param="max_tokens",
            )
        return max_tokens

    def _logprob(self, logits: np.ndarray, log_z: float, token: int, top_n: int) -> TokenLogprob:
        """The chosen token's log-probability under the model; alternatives among the allowed tokens."""
        top: tuple[TopLogprob, ...] = ()
        if top_n > 0:
            ids = np.argpartition(logits, -top_n)[-top_n:]
            ids = ids[np.argsort(logits[ids])[::-1]]
            top = tuple(TopLogprob(token=self._piece_text(int(i)), logprob=float(logits[i]) - log_z)
                        for i in ids if np.isfinite(logits[i]))
        return TokenLogprob(token=self._piece_text(token), logprob=float(logits[token]) - log_z, top=top)

    def _piece(self, token: int) -> bytes:
        """The bytes a token stands for (control tokens render as nothing); cached per id."""
        piece = self._pieces.get(token)
        if piece is None:
            size = 64
            while True:
                buf = ctypes.create_string_buffer(size)
                n = self._lib.llama_token_to_piece(self._vocab, token, buf, size, 0, False)
                if n >= 0:
                    break
                size = -n
            piece = self._pieces[token] = buf.raw[:n]
        return piece

    def _piece_text(self, token: int) -> str:
        return self._piece(token).decode("utf-8", errors="replace")

    async def aclose(self) -> None:
        self._executor.shutdown(wait=True)
        self._llm.close()
