"""`smallfleet bench guard`: the canary run through a live gateway, detection figures and the guard's cost.

1. **Canaries.** Every snippet of the canary corpus (`workload.pii.generate_canaries`: unique planted values
   across all categories, in chat turns, JSON, tool-call arguments, delimited rows) is sent to a real
   gateway (uvicorn, loopback) with API keys, five ways: a `redact` contract (plain and streamed), a
   `local_only` contract with shadow runs on (its remote rung must never be called), and plain requests to
   the remote model under a tenant whose policy is `redact` (plain and streamed). The remote model is a
   recording OpenAI-compatible server that echoes what it receives. Afterwards every planted value is
   searched for, byte for byte, in what the remote server received, in the trace database (every file of
   it, WAL included), in everything logged during the run, and in the audit database. An answer counts as
   restored when the caller gets the snippet back exactly as sent.
2. **Detection**: precision and recall per category and detection time (`guard.evaluate`), same run.
3. **Added latency**: plain requests to the same remote model from a `redact` tenant and from an `allow`
   tenant, interleaved, side by side (the remote answers at once, so the difference is the guard's).

The remote model is a local stand-in (the point is what reaches it); timings are for this machine.
"""

from __future__ import annotations

import io
import json
import logging
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from smallfleet.stats import percentile
from smallfleet.workload.pii import Snippet, generate_canaries, generate_eval_set

PATHS = ("contract_redact", "contract_redact_stream", "contract_local_only", "plain_redact", "plain_redact_stream")

_FLEET = """
models:
  - {{id: local, kind: fake}}
  - {{id: big, kind: openai, base_url: "{url}/v1", model: teacher, price_per_1k_input: 0.0025,
     price_per_1k_output: 0.01}}
contracts:
  - {{name: redact-echo, egress: redact, max_tokens: 1024, ladder: [big]}}
  - {{name: local-echo, egress: local_only, max_tokens: 1024, shadow_rate: 1.0, ladder: [local, big]}}
tenants:
  - {{name: clinic, egress: redact}}
  - {{name: open, egress: allow}}
"""


class _Recorder:
    """The remote model: records every request body as received, answers with the last message quoted back."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, request: dict[str, Any]) -> str:
        with self._lock:
            self.bodies.append(json.dumps(request, ensure_ascii=False))
        return "Received: " + str(request["messages"][-1]["content"])  # an answer that is not the input itself


def _answer(reply: httpx.Response, stream: bool) -> str | None:
    if reply.status_code != 200:
        return None
    if not stream:
        return reply.json()["choices"][0]["message"]["content"]
    text = []
    for line in reply.text.splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line[6:]).get("choices", []):
                text.append(choice.get("delta", {}).get("content") or "")
    return "".join(text)


def _found(values: dict[str, str], haystack: str) -> Counter[str]:
    """Planted values present verbatim in `haystack`, counted per category."""
    return Counter(category for value, category in values.items() if value in haystack)


def _files_text(home: Path, prefix: str) -> str:
    """Every byte of a SQLite database's files (main, WAL, journal) as text: freed pages included."""
    return "".join(p.read_bytes().decode("utf-8", "replace") for p in sorted(home.glob(prefix + "*")))


def run_guard_bench(canaries: int = 240, seed: int = 17, latency_requests: int = 100,
                    eval_snippets: int = 400) -> dict[str, Any]:
    from smallfleet.api.app import app_from_settings
    from smallfleet.auth.keys import KeyStore
    from smallfleet.config.fleet import GuardConfig
    from smallfleet.config.settings import Settings
    from smallfleet.evals.fake_upstream import FakeUpstream
    from smallfleet.guard.evaluate import run_guard_eval
    from smallfleet.sim.serve import serve_in_thread

    snippets = generate_canaries(canaries, seed)
    values = {span.value: span.category for s in snippets for span in s.spans}
    recorder = _Recorder()
    logs = io.StringIO()
    handler = logging.StreamHandler(logs)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with tempfile.TemporaryDirectory(prefix="smallfleet-guard-bench-") as tmp:
            home = Path(tmp)
            with serve_in_thread(FakeUpstream(responder=recorder)) as upstream:
                (home / "fleet.yaml").write_text(_FLEET.format(url=upstream))
                keys = KeyStore(home / "keys.db")
                clinic, open_ = keys.create("clinic")[1], keys.create("open")[1]
                keys.close()
                settings = Settings(home=home, config_path=home / "fleet.yaml")
                with serve_in_thread(app_from_settings(settings)) as gateway:
                    outcomes = _send_canaries(gateway, clinic, snippets)
                    # Everything as it stands once the canaries are answered (every trace is written before its
                    # answer goes out): every byte of the databases, WAL and freed pages included. The latency
                    # run below sends other text, partly from an `allow` tenant whose traces are kept raw.
                    remote, calls, logged = "\n".join(recorder.bodies), len(recorder.bodies), logs.getvalue()
                    traces, audit = _files_text(home, "traces.db"), _files_text(home, "audit.db")
                    latency = _latency(gateway, clinic, open_, generate_eval_set(latency_requests, 13),
                                       latency_requests)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    leaks = {where: _found(values, text) for where, text in
             (("remote_payloads", remote), ("traces", traces), ("logs", logged), ("audit", audit))}
    detection = run_guard_eval(eval_snippets, 13, options=GuardConfig().detector_options())  # as the gateway runs
    restorable = [o for o in outcomes if o["path"] != "contract_local_only"]
    return {
        "canaries": {"snippets": len(snippets), "values": len(values), "by_category": dict(Counter(values.values()))},
        "requests": {path: {"sent": sum(o["path"] == path for o in outcomes),
                            "answered": sum(o["path"] == path and o["status"] == 200 for o in outcomes),
                            "restored": sum(o["path"] == path and o["restored"] for o in outcomes)}
                     for path in PATHS},
        "remote_calls": calls,
        "leaks": {where: {"total": sum(found.values()), "by_category": dict(found)} for where, found in leaks.items()},
        "bytes_searched": {"remote_payloads": len(remote), "traces": len(traces), "logs": len(logged),
                           "audit": len(audit)},
        "restored_rate": round(sum(o["restored"] for o in restorable) / max(1, len(restorable)), 4),
        "unrestored_examples": [o["snippet"] for o in restorable if not o["restored"]][:5],
        "detection": {k: detection[k] for k in ("categories", "micro", "masked", "false_positives_on_hard_negatives",
                                                 "ms_per_request", "snippets")},
        "added_latency": latency,
    }


def _send_canaries(gateway: str, key: str, snippets: list[Snippet]) -> list[dict[str, Any]]:
    out = []
    headers = {"Authorization": f"Bearer {key}"}
    ways = [("contract_redact", "redact-echo", False), ("contract_redact_stream", "redact-echo", True),
            ("contract_local_only", "local-echo", False), ("plain_redact", "big", False),
            ("plain_redact_stream", "big", True)]
    with httpx.Client(base_url=gateway, headers=headers, timeout=60) as client:
        for snippet in snippets:
            for path, model, stream in ways:
                body = {"model": model, "stream": stream, "max_tokens": 1024,
                        "messages": [{"role": "user", "content": snippet.text}]}
                if model != "big":
                    body.pop("max_tokens")
                reply = client.post("/v1/chat/completions", json=body)
                answer = _answer(reply, stream)
                out.append({"path": path, "status": reply.status_code, "snippet": snippet.id,
                            "restored": answer is not None and snippet.text in answer})
    return out


def _latency(gateway: str, redact_key: str, allow_key: str, snippets: list[Snippet], n: int) -> dict[str, Any]:
    """Plain requests from a redact tenant and an allow tenant, interleaved: the guard's added time per request."""
    timings: dict[str, list[float]] = {"redact": [], "allow": []}
    with httpx.Client(base_url=gateway, timeout=60) as client:
        for i in range(n):
            text = snippets[i % len(snippets)].text
            for policy, key in (("redact", redact_key), ("allow", allow_key)) if i % 2 else (
                    ("allow", allow_key), ("redact", redact_key)):
                started = time.perf_counter()
                reply = client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                                    json={"model": "big", "max_tokens": 1024,
                                          "messages": [{"role": "user", "content": text}]})
                if reply.status_code == 200:
                    timings[policy].append((time.perf_counter() - started) * 1000)
    summary = {policy: {"requests": len(ms), "p50_ms": round(percentile(ms, 50), 2),
                        "p90_ms": round(percentile(ms, 90), 2),
                        "mean_ms": round(statistics.fmean(ms), 2)} for policy, ms in timings.items() if ms}
    if len(summary) == 2:
        summary["added_p50_ms"] = round(summary["redact"]["p50_ms"] - summary["allow"]["p50_ms"], 2)
        summary["p50_ratio"] = round(summary["redact"]["p50_ms"] / summary["allow"]["p50_ms"], 2)
    return summary
