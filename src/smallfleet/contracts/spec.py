"""The contract, as declared in the fleet file (pydantic, unknown keys rejected).

```yaml
contracts:
  - name: ticket-triage
    instructions: Classify the support ticket.
    output: {json_schema: {type: object, properties: {...}, required: [...]}}
    validators: ["mypkg.checks:no_empty_product"]   # callables taking (output_text) -> str | None
    examples: [{input: "I was charged twice", output: '{"category": "billing"}'}]
    quality_target: 0.98        # agreement with the reference that calibration must hold
    latency_budget_ms: 10000
    egress: allow               # local_only: remote rungs never called; redact: they get placeholders
    budget_usd: 5.0             # spend cap for remote rungs (lifetime); local rungs are never blocked
    budget_per_day_usd: 1.0     # and per UTC day, per UTC month: enforced across every replica
    ladder:
      - {model: smollm2-135m, accept: {min_mean_logprob: -0.4}}
      - {model: teacher, timeout_s: 30, retries: 2}
```
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from smallfleet.constrain.spec import (
    ChoiceConstraint,
    Constraint,
    GrammarConstraint,
    JsonSchemaConstraint,
    RegexConstraint,
    ToolsConstraint,
    ToolSpec,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolDecl(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class OutputSpec(_Strict):
    """Exactly one output constraint, or none for free text."""

    json_schema: dict[str, Any] | None = None
    choice: list[str] | None = Field(None, min_length=1)
    regex: str | None = None
    grammar: str | None = None
    tools: list[ToolDecl] | None = Field(None, min_length=1)
    tool_choice: Literal["auto", "required"] = "auto"

    @model_validator(mode="after")
    def _one(self) -> OutputSpec:
        given = [k for k in ("json_schema", "choice", "regex", "grammar", "tools") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one output constraint, not {' and '.join(given)}")
        return self

    def constraint(self) -> Constraint | None:
        if self.json_schema is not None:
            return JsonSchemaConstraint(schema=self.json_schema)
        if self.choice is not None:
            return ChoiceConstraint(options=tuple(self.choice))
        if self.regex is not None:
            return RegexConstraint(pattern=self.regex)
        if self.grammar is not None:
            return GrammarConstraint(lark=self.grammar)
        if self.tools is not None:
            return ToolsConstraint(tools=tuple(ToolSpec(t.name, t.description, t.parameters) for t in self.tools),
                                   mode=self.tool_choice)
        return None


class AcceptRule(_Strict):
    """When a rung's answer is good enough to keep (all set thresholds must hold; unset = not checked)."""

    min_mean_logprob: float | None = None
    min_token_logprob: float | None = None
    min_margin: float | None = Field(None, ge=0, le=1)
    min_agreement: float | None = Field(None, ge=0, le=1)
    # Grounded contracts only (`grounding:`): the best passage's cosine similarity to the question (checked
    # before the rung runs: a rung that would not be accepted is skipped) and the share of the answer's
    # content words found in the passages it cites.
    min_retrieval: float | None = Field(None, ge=-1, le=1)
    min_support: float | None = Field(None, ge=0, le=1)


class Rung(_Strict):
    model: str
    timeout_s: float = Field(60.0, gt=0)
    retries: int = Field(0, ge=0, le=5)
    samples: int = Field(1, ge=1, le=8, description="k samples for agreement (first greedy, rest sampled)")
    accept: AcceptRule = Field(default_factory=AcceptRule)
    prompt: Literal["contract", "input", "bare"] = Field(
        "contract", description="contract: instructions + examples + input; input: the input alone, with the "
                                "constraint's instructions (a specialist fine-tuned on exactly that prompt); bare: "
                                "the input alone, without them (the grammar still enforces the shape)")


class Grounding(_Strict):
    """Answer from a knowledge base: the top passages go into the prompt, the answer cites them."""

    knowledge_base: str
    top_k: int = Field(4, ge=1, le=20, description="passages retrieved and quoted per request")
    passage_words: int = Field(150, ge=20, le=2000, description="each passage quoted up to this many words")
    max_citations: int = Field(3, ge=1, le=20)
    answer_chars: int = Field(300, ge=20, le=4000, description="the answer's length limit, enforced by the "
                              "grammar (so a small model closes its answer instead of running out of tokens)")
    answer: Literal["written", "quoted"] = Field(
        "written", description="written: the model writes the answer; quoted: the answer is one sentence copied "
                               "from a passage, which it cites (the grammar enumerates the sentences)")


class CacheSpec(_Strict):
    """Serve repeated requests from the answer cache (see `cache.store`)."""

    ttl_s: float = Field(3600.0, gt=0, description="how long an answer may be served again")
    semantic: float | None = Field(None, gt=0, le=1, description="also serve a near question's answer when the cosine "
                                   "similarity is at least this and verification passes (grounded contracts: "
                                   "the same passages retrieved and the same key words; classification "
                                   "contracts: `agree` cached neighbours, all with the same answer)")
    agree: int = Field(3, ge=1, le=20, description="classification contracts with `semantic`: a near hit needs this "
                       "many cached requests at or above the similarity, all answered alike")
    sensitive: bool = Field(False, description="cache requests in which the guard detects sensitive values too")


class Example(_Strict):
    input: str
    output: str


class ContractSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    instructions: str = ""
    output: OutputSpec = Field(default_factory=OutputSpec)
    validators: list[str] = Field(default_factory=list, description="import paths 'module:function'")
    examples: list[Example] = Field(default_factory=list)
    quality_target: float = Field(0.98, gt=0, le=1)
    latency_budget_ms: float | None = Field(None, gt=0)
    egress: Literal["local_only", "redact", "allow"] = "allow"
    budget_usd: float | None = Field(None, ge=0)
    budget_per_day_usd: float | None = Field(None, ge=0)
    budget_per_month_usd: float | None = Field(None, ge=0)
    max_tokens: int = Field(256, ge=1)
    shadow_rate: float = Field(0.0, ge=0, le=1, description="share of locally accepted answers also asked of the "
                               "top rung in the background (policy and budget permitting) to measure live quality")
    grounding: Grounding | None = None
    cache: CacheSpec | None = None
    ladder: list[Rung] = Field(min_length=1)

    @model_validator(mode="after")
    def _grounded_output_is_implied(self) -> ContractSpec:
        if self.grounding is not None and self.output != OutputSpec():
            raise ValueError("a grounded contract answers {answer, citations}: leave `output` out")
        if self.cache is not None and self.cache.semantic is not None and self.grounding is None \
                and not self.classifies:
            raise ValueError("cache.semantic needs `grounding:` or an output that picks from options (choice, or a "
                             "JSON object of enums): a near hit is served only when it can be verified (other "
                             "contracts: exact matches only)")
        if self.cache is not None and "agree" in self.cache.model_fields_set and not self.classifies:
            raise ValueError("cache.agree applies to classification contracts (a choice, or a JSON object of enums); "
                             "grounded near hits are verified by their passages and key words")
        if self.grounding is None:
            for i, rung in enumerate(self.ladder):
                if rung.accept.min_retrieval is not None or rung.accept.min_support is not None:
                    raise ValueError(f"ladder[{i}].accept: min_retrieval and min_support need `grounding:`")
        return self

    @property
    def classifies(self) -> bool:
        """Whether the answer is a pick from options (a choice, or a JSON object of enums)."""
        from smallfleet.specialists.classifier import layout_of

        return self.grounding is None and layout_of(self.output.constraint()) is not None

    @model_validator(mode="before")
    @classmethod
    def _ladder_shorthand(cls, data: Any) -> Any:
        """Allow `ladder: [small, big]` as shorthand for `[{model: small}, {model: big}]`."""
        if isinstance(data, dict) and isinstance(data.get("ladder"), list):
            data = {**data, "ladder": [{"model": r} if isinstance(r, str) else r for r in data["ladder"]]}
        return data
