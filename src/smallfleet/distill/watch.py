"""`smallfleet distill watch`: retrain when enough new references arrive or the local share drifts down,
and roll back a promoted version whose live quality falls below the target.

Each pass, for every contract of the fleet file:
1. live quality (`distill.monitor`): a promoted version confidently below target is rolled back;
2. new references: traces newer than the latest version's data that carry a reference (a label, a
   live shadow answer, or the top rung's valid answer); at least `min_new` starts a retrain;
3. drift: the local share over the last `window` routed requests is more than `drift` below the share
   the promoted version was gated at; that starts a retrain too.
A retrain is `smallfleet distill run CONTRACT --json` in a child process at the lowest CPU priority
(nice 19), so serving keeps the CPU whenever it needs it; its JSON result is returned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smallfleet.config.fleet import load_fleet
from smallfleet.config.settings import Settings
from smallfleet.contracts.spec import ContractSpec
from smallfleet.distill.dataset import reference_of
from smallfleet.distill.monitor import check_and_roll_back
from smallfleet.specialists.registry import SpecialistRegistry
from smallfleet.trace.store import TraceQuery, open_store

Retrain = Callable[[Settings, str], dict[str, Any]]


@dataclass(frozen=True)
class WatchOptions:
    min_new: int = 200  # new references that start a retrain
    window: int = 200  # recent requests over which the local share is measured
    drift: float = 0.15  # a drop of the local share that starts a retrain
    min_live_samples: int = 30  # referenced answers needed before live quality can roll a version back


def retrain_in_child(settings: Settings, contract: str) -> dict[str, Any]:
    """`distill run` in a separate, lowest-priority process (its output is one JSON object)."""
    env = {**os.environ, "SMALLFLEET_HOME": str(settings.home)}
    if settings.config_path is not None:
        env["SMALLFLEET_CONFIG"] = str(settings.config_path)
    done = subprocess.run([sys.executable, "-m", "smallfleet.cli", "distill", "run", contract, "--json"],
                          env=env, capture_output=True, text=True, preexec_fn=lambda: os.nice(19), check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["distill run failed"])[-1]}
    return json.loads(done.stdout)


def _status(settings: Settings, spec: ContractSpec, options: WatchOptions) -> dict[str, Any]:
    registry = SpecialistRegistry(settings.home)
    versions = registry.versions(spec.name)
    since = max(((v.dataset.get("trace_range") or [0, 0])[1] for v in versions), default=0.0)
    store = open_store(settings)
    try:
        traces = store.query(TraceQuery(limit=10_000_000, contract=spec.name))
        labels = {k: v for k, v in store.labels(spec.name).items()}
    finally:
        store.close()
    top = spec.ladder[-1].model
    new = sum(1 for t in traces if t.created_at > since and reference_of(t, labels, top) is not None)
    promoted = registry.promoted(spec.name)
    promoted_at = max((h["at"] for h in registry.state(spec.name)["history"] if h["action"] == "promote"
                       and h["version"] == (promoted.version if promoted else None)), default=0.0)
    # newest first, and only requests served since the current version took over
    recent = [t for t in traces if t.status == "ok" and t.created_at > promoted_at][: options.window]
    share = (sum(1 for t in recent if any(a.get("status") == "accepted" and a.get("location") == "local"
                                          for a in t.attempts)) / len(recent)) if recent else None
    expected = promoted.metrics.get("candidate", {}).get("test_local_share") if promoted else None
    return {"new_references": new, "since": since, "recent_local_share": share, "expected_local_share": expected,
            "recent_requests": len(recent)}


def watch_once(settings: Settings, options: WatchOptions = WatchOptions(),
               retrain: Retrain = retrain_in_child) -> dict[str, Any]:
    """One pass over every contract: what was found and what was done."""
    config = load_fleet(settings.config_path)
    out: dict[str, Any] = {}
    for spec in config.contracts:
        live = check_and_roll_back(settings, spec, options.min_live_samples)
        status = _status(settings, spec, options)
        why = []
        if status["new_references"] >= options.min_new:
            why.append(f"{status['new_references']} new references >= {options.min_new}")
        share, expected = status["recent_local_share"], status["expected_local_share"]
        if (share is not None and expected is not None and status["recent_requests"] >= options.window // 2
                and share < expected - options.drift):
            why.append(f"local share {share:.3f} over the last {status['recent_requests']} requests drifted below "
                       f"{expected:.3f} - {options.drift:g}")
        if live is not None and live.get("rolled_back"):
            why.append("the promoted version was rolled back")
        entry: dict[str, Any] = {"live": live, **status, "retrain": why or None}
        if why:
            entry["result"] = retrain(settings, spec.name)
        out[spec.name] = entry
    return out


def watch(settings: Settings, interval_s: float, options: WatchOptions = WatchOptions(),
          report: Callable[[dict[str, Any]], None] = print) -> None:
    """Pass after pass, forever (Ctrl-C stops it between passes or kills the low-priority child)."""
    while True:
        report(watch_once(settings, options))
        time.sleep(interval_s)
