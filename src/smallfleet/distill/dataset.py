"""Training data for a contract's specialist, built from the traces the router already keeps.

An example is a traced request's input with a *reference* answer: an attached label (gold,
reviewer) wins over the answer of the contract's top rung (accepted or shadow, and valid). Every
reference is put in canonical form and checked again against the contract's constraint and
validators; invalid ones are dropped. Exact duplicates (same normalised input) and near duplicates
(token sets that overlap by `near` or more) are removed, keeping the labelled or newest one.

The split is deterministic (a hash of the normalised input), and the test split is *frozen* the
first time it is written: later builds keep those items as the test split, verify the stored hash,
and send new traffic only to train and dev, so every specialist version is compared on the same
items. Nothing from the frozen test (nor a near duplicate of it) ever reaches train or dev.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from smallfleet.backends.base import Generation, Timings, ToolCall
from smallfleet.constrain.outcome import Outcome, canonical
from smallfleet.constrain.spec import ChoiceConstraint, JsonSchemaConstraint, ToolsConstraint
from smallfleet.errors import SmallfleetError
from smallfleet.route.router import Contract
from smallfleet.trace.record import Trace

Source = Literal["label", "top_rung"]
Split = Literal["train", "dev", "test"]


@dataclass(frozen=True)
class Example:
    """One training example: the request's input and its canonical reference answer."""

    id: str  # the trace id it came from
    input: str
    reference: str
    source: Source
    created_at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Dataset:
    """A contract's examples, split, with what was dropped and why."""

    contract: str
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    dropped: dict[str, int] = field(default_factory=dict)
    balance: dict[str, dict[str, int]] = field(default_factory=dict)
    test_frozen_at: str | None = None  # the frozen test split's hash
    sources: dict[str, int] = field(default_factory=dict)

    def split(self, name: Split) -> list[Example]:
        return {"train": self.train, "dev": self.dev, "test": self.test}[name]

    @property
    def hash(self) -> str:
        """sha256 over every split's ids and references (a specialist's card records it)."""
        return _hash([*self.train, *self.dev, *self.test])

    @property
    def trace_range(self) -> tuple[float, float] | None:
        times = [e.created_at for e in (*self.train, *self.dev, *self.test)]
        return (min(times), max(times)) if times else None

    def summary(self) -> dict[str, Any]:
        return {"contract": self.contract, "hash": self.hash,
                "kept": {"train": len(self.train), "dev": len(self.dev), "test": len(self.test)},
                "sources": self.sources, "dropped": self.dropped,
                "balance": {name: _balance_summary(counts) for name, counts in self.balance.items()},
                "test_hash": self.test_frozen_at, "trace_range": self.trace_range}


def _balance_summary(counts: dict[str, int], show: int = 12) -> dict[str, Any]:
    """Class counts of the train split; past `show` classes, the spread and the rarest and commonest few."""
    if len(counts) <= show:
        return counts
    values = sorted(counts.values())
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"classes": len(counts), "min": values[0], "median": values[len(values) // 2], "max": values[-1],
            "commonest": dict(ordered[:5]), "rarest": dict(ordered[-5:])}


def _hash(examples: Sequence[Example]) -> str:
    digest = hashlib.sha256()
    for e in sorted(examples, key=lambda e: e.id):
        digest.update(json.dumps([e.id, e.input, e.reference]).encode())
    return digest.hexdigest()


def normalise(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed: exact duplicates compare equal."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _tokens(text: str) -> frozenset[str]:
    return frozenset(normalise(text).split())


def parse_reference(contract: Contract, text: str) -> Outcome:
    """A stored answer checked under the contract: for tools, `[]`-lists of calls (as the router records
    them) become tool calls; anything else is text."""
    calls: tuple[ToolCall, ...] = ()
    if isinstance(contract.constraint, ToolsConstraint):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and value and all(isinstance(c, dict) and "name" in c for c in value):
            calls = tuple(ToolCall(f"call_{i}", str(c["name"]), json.dumps(c.get("arguments", {})))
                          for i, c in enumerate(value))
            text = ""
    gen = Generation("reference", text, "stop", 0, 0, (), Timings(0, 0), calls)
    outcome = contract.check(gen)
    if not outcome.valid:
        return outcome
    return outcome if not calls else Outcome(text, calls, True)


def reference_of(trace: Trace, labels: Mapping[str, str], top_model: str,
                 sources: Mapping[str, str] | None = None) -> tuple[str, Source] | None:
    """The trace's reference: its label, else the valid answer of the top rung (`top_model`). A label whose
    source is a live shadow check (`shadow:<model>`) is a top-rung answer, not a person's label."""
    if trace.id in labels:
        shadow = (sources or {}).get(trace.id, "").startswith("shadow:")
        return labels[trace.id], "top_rung" if shadow else "label"
    top = next((a for a in trace.attempts if a.get("model") == top_model and a.get("status") in ("accepted", "shadow")
                and (a.get("signals") or {}).get("valid") and a.get("output") is not None), None)
    return (top["output"], "top_rung") if top else None


def fields_of(contract: Contract, reference: str) -> dict[str, str]:
    """The classes of an answer, for label balance: the choice itself, each enum field, or the tools called."""
    c = contract.constraint
    if isinstance(c, ChoiceConstraint):
        return {"answer": reference}
    if isinstance(c, ToolsConstraint):
        try:
            calls = json.loads(reference)
        except ValueError:
            calls = None
        names = [x.get("name") for x in calls] if isinstance(calls, list) and calls else []
        return {"tools": "+".join(sorted(str(n) for n in names)) or "no_call"}
    if isinstance(c, JsonSchemaConstraint):
        try:
            value = json.loads(reference)
        except ValueError:
            return {}
        props = c.schema.get("properties", {}) if isinstance(c.schema, dict) else {}
        return {k: str(value.get(k)) for k, p in props.items()
                if isinstance(p, dict) and "enum" in p and isinstance(value, dict)}
    return {}


def _split_of(text: str, dev: float, test: float) -> Split:
    x = int(hashlib.sha256(normalise(text).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if x < test else "dev" if x < test + dev else "train"


class FrozenTest:
    """The frozen test split of one contract: `test.jsonl` plus `test.sha256`, written once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path, self.hash_path = folder / "test.jsonl", folder / "test.sha256"

    def load(self) -> list[Example] | None:
        if not self.path.is_file():
            return None
        examples = [Example(**json.loads(line)) for line in self.path.read_text().splitlines() if line.strip()]
        stored = self.hash_path.read_text().strip() if self.hash_path.is_file() else None
        if stored != _hash(examples):
            raise SmallfleetError(f"the frozen test split {self.path} does not match its hash {self.hash_path}: "
                                  "it was edited; restore it, or delete both files to freeze a new one "
                                  "(earlier versions' figures are then no longer comparable)")
        return examples

    def freeze(self, examples: list[Example]) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_jsonl(self.path, [e.as_dict() for e in examples])
        digest = _hash(examples)
        self.hash_path.write_text(digest + "\n")
        return digest


def build_dataset(contract: Contract, traces: Sequence[Trace], labels: Mapping[str, str],
                  frozen: FrozenTest | None = None, dev: float = 0.15, test: float = 0.15,
                  near: float = 0.9, sources: Mapping[str, str] | None = None, min_dev: int = 40) -> Dataset:
    """Examples from `traces` (any order), deduplicated, split; the test split frozen in `frozen`.
    `sources` gives each label's source (live shadow answers rank below a person's labels). The dev split
    gets `dev` of the data, and at least `min_dev` examples while that is at most 30% of it: the accept
    rule is fitted on dev, and with the Wilson bound (z=1) 19 accepted answers, all right, are the fewest
    that can certify 95% — a specialist that is right 85% of the time needs twice that many to show it."""
    spec = contract.spec
    top_model = spec.ladder[-1].model
    dropped: Counter[str] = Counter()
    candidates: list[Example] = []
    for t in traces:
        if t.contract not in (None, spec.name) or not (t.input or "").strip():
            dropped["no input" if t.contract in (None, spec.name) else "other contract"] += 1
            continue
        found = reference_of(t, labels, top_model, sources)
        if found is None:
            dropped["no reference (no label and no valid top-rung answer)"] += 1
            continue
        outcome = parse_reference(contract.for_text(t.input or ""), found[0])  # grounded: this input's passage ids
        if not outcome.valid:
            dropped["reference fails the contract"] += 1
            continue
        candidates.append(Example(t.id, t.input or "", canonical(found[0]), found[1], t.created_at))
    # labelled first, then newest: the kept copy of a duplicate is the most trustworthy one
    candidates.sort(key=lambda e: (e.source != "label", -e.created_at, e.id))
    frozen_test = frozen.load() if frozen is not None else None
    seen: dict[str, Example] = {}
    token_sets: list[frozenset[str]] = []
    if frozen_test is not None:
        for e in frozen_test:
            seen[normalise(e.input)] = e
            token_sets.append(_tokens(e.input))
    frozen_keys = set(seen)
    kept: list[Example] = []
    for e in candidates:
        key = normalise(e.input)
        if key in seen:
            if seen[key].id != e.id:  # the same trace as a frozen test item is that item: not counted
                dropped["in the frozen test split" if key in frozen_keys else "duplicate input"] += 1
            continue
        tokens = _tokens(e.input)
        if len(tokens) >= 4 and any(len(tokens & o) / len(tokens | o) >= near for o in token_sets if len(o) >= 4):
            dropped["near-duplicate input"] += 1
            continue
        seen[key] = e
        token_sets.append(tokens)
        kept.append(e)
    kept.sort(key=lambda e: (e.created_at, e.id))
    splits: dict[Split, list[Example]] = {"train": [], "dev": [], "test": []}
    rest = []
    for e in kept:
        if frozen_test is None and _split_of(e.input, 0.0, test) == "test":
            splits["test"].append(e)
        else:
            rest.append(e)
    # Dev gets an exact count, not a hash share (a 15% hash share of 200 came out as 24): the dev-fitted rule
    # needs enough answers to certify the target. The lowest hashes go to dev, so the choice is deterministic.
    wanted = 0 if dev <= 0 else max(round(dev * len(kept)), min(min_dev, int(0.3 * len(kept))))
    ranked = sorted(rest, key=lambda e: hashlib.sha256(("dev:" + normalise(e.input)).encode()).hexdigest())
    chosen = {id(e) for e in ranked[:wanted]}
    for e in rest:
        splits["dev" if id(e) in chosen else "train"].append(e)
    test_items = frozen_test if frozen_test is not None else splits["test"]
    digest = frozen.freeze(test_items) if frozen is not None and frozen_test is None else (
        _hash(test_items) if test_items else None)
    balance: dict[str, Counter[str]] = {}
    for e in splits["train"]:
        for name, value in fields_of(contract, e.reference).items():
            balance.setdefault(name, Counter())[value] += 1
    sources = Counter(e.source for e in (*splits["train"], *splits["dev"], *test_items))
    return Dataset(spec.name, splits["train"], splits["dev"], list(test_items), dict(dropped),
                   {k: dict(v.most_common()) for k, v in balance.items()}, digest, dict(sources))


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    tmp.replace(path)


def openai_row(contract: Contract, example: Example) -> dict[str, Any]:
    """One example as an OpenAI fine-tuning row: the messages the router sends, then the reference answer."""
    messages: list[dict[str, Any]] = [{"role": m.role, "content": m.content} for m in contract.messages(example.input)]
    outcome = parse_reference(contract.for_text(example.input), example.reference)
    if outcome.tool_calls:
        messages.append({"role": "assistant", "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in outcome.tool_calls]})
    else:
        messages.append({"role": "assistant", "content": example.reference})
    row: dict[str, Any] = {"messages": messages}
    if isinstance(contract.constraint, ToolsConstraint):
        row["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                          "parameters": t.parameters}}
                        for t in contract.constraint.tools]
    return row


def export(dataset: Dataset, contract: Contract, folder: Path) -> dict[str, str]:
    """Write the splits (ours, JSONL), the train and dev splits as OpenAI fine-tuning JSONL, and a manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in ("train", "dev", "test"):
        path = folder / f"{name}.jsonl"
        _write_jsonl(path, [e.as_dict() for e in dataset.split(name)])  # type: ignore[arg-type]
        written[name] = str(path)
    for name in ("train", "dev"):
        path = folder / f"{name}.openai.jsonl"
        _write_jsonl(path, [openai_row(contract, e) for e in dataset.split(name)])  # type: ignore[arg-type]
        written[f"{name}_openai"] = str(path)
    manifest = folder / "dataset.json"
    manifest.write_text(json.dumps(dataset.summary(), indent=2))
    written["manifest"] = str(manifest)
    return written
