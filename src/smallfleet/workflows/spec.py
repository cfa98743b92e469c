"""A workflow as declared in the fleet file (`workflows:`) or built in Python: steps run in order.

```yaml
workflows:
  - name: support-ticket
    steps:
      - id: triage                        # a contract: routed like any request (rungs, escalation, guard)
        contract: ticket-triage
        input: "{input}"
      - id: customer                      # a tool: a Python function (module:function), arguments rendered
        tool: smallfleet.workload.support:lookup_customer
        args: {email: "{triage.email}"}
      - id: refund-check
        when: {triage.category: [billing, refund]}   # run only if the path's value is one of these
        model: smollm2-135m               # a plain model call, optionally constrained
        prompt: "Refund {customer.name}? Ticket: {input}"
        output: {choice: ["yes", "no"]}
        max_tokens: 8
    output: "{refund-check}"              # what the run returns (default: the last step's output)
```

Templates read `{input}` (the run's input) and `{STEP}` / `{STEP.a.b}` (a step's output, or a path into
its JSON); a dict or list is written as compact JSON. A skipped step's output is null.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from smallfleet.contracts.spec import OutputSpec

STEP_ID = r"^[A-Za-z][A-Za-z0-9_-]*$"
_FIELD = re.compile(r"\{([A-Za-z][A-Za-z0-9_-]*)((?:\.[A-Za-z0-9_-]+)*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepSpec(_Strict):
    """One hop: exactly one of `contract`, `tool`, `model`."""

    id: str = Field(pattern=STEP_ID)
    contract: str | None = None
    tool: str | None = Field(None, description="a Python function as 'module:function'")
    model: str | None = None
    input: str = Field("{input}", description="a contract's input (template)")
    args: dict[str, Any] = Field(default_factory=dict, description="a tool's keyword arguments (templates)")
    prompt: str = Field("{input}", description="a model call's user message (template)")
    system: str | None = Field(None, description="a model call's system message (template)")
    output: OutputSpec = Field(default_factory=OutputSpec, description="a model call's output constraint")
    max_tokens: int = Field(64, ge=1)
    instructions: bool = Field(True, description="a model call: add the output constraint's instructions (a system "
                                                 "message, first in the prompt); false keeps the prompt as written, "
                                                 "so hops sharing a prefix reuse llama.cpp's KV cache")
    when: dict[str, Any] | None = Field(None, description="run only if every path's value equals the given value "
                                                          "(or is one of a given list)")

    @model_validator(mode="after")
    def _one_kind(self) -> StepSpec:
        given = [k for k in ("contract", "tool", "model") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"step {self.id!r}: give exactly one of contract, tool or model"
                             + (f", not {' and '.join(given)}" if given else ""))
        if self.tool is not None and not re.fullmatch(r"[\w.]+:[\w]+", self.tool):
            raise ValueError(f"step {self.id!r}: tool must be 'module:function', not {self.tool!r}")
        return self

    @property
    def kind(self) -> str:
        return "contract" if self.contract is not None else "tool" if self.tool is not None else "model"

    def templates(self) -> list[str]:
        texts = {"contract": [self.input], "model": [self.prompt, self.system or ""], "tool": _strings(self.args)}
        return texts[self.kind] + ["{" + path + "}" for path in self.when or {}]  # a `when` path reads like a template

    @model_validator(mode="after")
    def _when_paths(self) -> StepSpec:
        for path in self.when or {}:
            if not _FIELD.fullmatch("{" + path + "}"):
                raise ValueError(f"step {self.id!r}: when: {path!r} is not a path like 'triage.category'")
        return self


class WorkflowSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str = ""
    steps: list[StepSpec] = Field(min_length=1)
    output: str | None = Field(None, description="template of the run's result (default: the last step's output)")

    @model_validator(mode="after")
    def _references_point_backwards(self) -> WorkflowSpec:
        seen: list[str] = []
        for step in self.steps:
            if step.id in seen or step.id == "input":
                raise ValueError(f"workflow {self.name!r}: step id {step.id!r} is repeated or reserved")
            for text in step.templates():
                for ref in referenced(text):
                    if ref != "input" and ref not in seen:
                        raise ValueError(f"workflow {self.name!r}: step {step.id!r} reads {ref!r}, which is not an "
                                         f"earlier step (earlier: {', '.join(seen) or 'none'})")
            seen.append(step.id)
        for ref in referenced(self.output or ""):
            if ref != "input" and ref not in seen:
                raise ValueError(f"workflow {self.name!r}: output reads {ref!r}, which is not a step")
        return self


def _strings(value: Any) -> list[str]:
    """Every string inside a tool's arguments, however nested."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def referenced(text: str) -> list[str]:
    """The step ids (or `input`) a template reads."""
    return [m.group(1) for m in _FIELD.finditer(text)]
