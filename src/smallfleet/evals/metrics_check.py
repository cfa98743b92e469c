"""`smallfleet bench metrics`: does `/metrics` say what `smallfleet report` says, after real traffic?

A live gateway (`smallfleet serve`, its own process) runs the demo's ticket-triage contract: the embedded
SmolLM2 first (accepted when its mean log-probability is at least `min_mean_logprob`), then the simulated
teacher on loopback (priced, remote). `requests` generated support tickets go through it over HTTP, plus
a plain model request and a refused one. Then `/metrics` is scraped, `smallfleet report --json` is run on
the same store, and the figures both give are set side by side: requests, local share, cost, the
all-top-rung cost and escalations per reason (costs agree within a millionth: the two sum in different
orders).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import yaml

from smallfleet.evals.gateway import free_port, process
from smallfleet.observe.metrics import samples


def _agree(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal, numbers within a millionth (the two sum the same costs in different orders)."""
    for key in a.keys() | b.keys():
        x, y = a.get(key), b.get(key)
        if isinstance(x, float) and isinstance(y, float):
            if abs(x - y) > 1e-6:
                return False
        elif x != y:
            return False
    return True


def run_metrics_check(requests: int = 40, min_mean_logprob: float = -0.05) -> dict[str, Any]:
    from smallfleet.evals.demo import demo_config
    from smallfleet.sim.serve import serve_in_thread
    from smallfleet.sim.teacher import teacher_app
    from smallfleet.workload.tickets import generate_tickets

    contract = "ticket-triage"
    with tempfile.TemporaryDirectory(prefix="smallfleet-metrics-") as home, \
            serve_in_thread(teacher_app(0.97, latency_s=0.05)) as teacher_url:
        config = demo_config(teacher_url, 0.95).model_dump(mode="json", exclude_none=True)
        config["contracts"] = [c for c in config["contracts"] if c["name"] == contract]
        config["contracts"][0]["ladder"][0]["accept"] = {"min_mean_logprob": min_mean_logprob}
        fleet = Path(home) / "fleet.yaml"
        fleet.write_text(yaml.safe_dump(config, sort_keys=False))
        env = {**os.environ, "SMALLFLEET_HOME": home, "SMALLFLEET_CONFIG": str(fleet)}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with process([sys.executable, "-m", "smallfleet.cli", "serve", "--port", str(port)], env, f"{url}/healthz"):
            with httpx.Client(base_url=url, timeout=120) as http:
                codes = [http.post("/v1/chat/completions", json={"model": contract, "messages": [
                    {"role": "user", "content": t.text}]}).status_code for t in generate_tickets(requests)]
                codes.append(http.post("/v1/chat/completions", json={"model": "smollm2-135m", "max_tokens": 8,
                                                                      "messages": [{"role": "user", "content": "hi"}]}
                                       ).status_code)
                codes.append(http.post("/v1/chat/completions", json={"model": "nope", "messages": []}).status_code)
                text = http.get("/metrics").text
        report = json.loads(subprocess.run([sys.executable, "-m", "smallfleet.cli", "report", "--json"], env=env,
                                           capture_output=True, text=True, check=True).stdout)[contract]
    m = samples(text)
    routed = m.get(f"smallfleet:routed_requests_total{{contract={contract}}}", 0.0)
    local = m.get(f"smallfleet:local_answers_total{{contract={contract}}}", 0.0)
    cost = sum(v for k, v in m.items() if k.startswith("smallfleet:cost_usd_total{") and f"contract={contract}" in k)
    top_cost = m.get(f"smallfleet:top_rung_answer_cost_usd_total{{contract={contract}}}", 0.0)
    top_n = m.get(f"smallfleet:top_rung_answers_total{{contract={contract}}}", 0.0)
    priced = m.get(f"smallfleet:remote_priced_cost_usd_total{{contract={contract}}}", 0.0)
    priced_n = m.get(f"smallfleet:remote_priced_attempts_total{{contract={contract}}}", 0.0)
    mean_top = top_cost / top_n if top_n else (priced / priced_n if priced_n else None)
    escalations = {k.split("reason=")[1].rstrip("}"): int(v) for k, v in m.items()
                   if k.startswith(f"smallfleet:escalations_total{{contract={contract},")}
    from_metrics = {"requests": int(routed), "local_share": round(local / routed, 4) if routed else None,
                    "cost_usd": round(cost, 6),
                    "cost_all_top_rung_usd": round(mean_top * routed, 6) if mean_top is not None else None,
                    "escalations": dict(sorted(escalations.items()))}
    from_report = {"requests": report["requests"], "local_share": report["local_share"],
                   "cost_usd": report["cost_usd"], "cost_all_top_rung_usd": report["cost_all_top_rung_usd"],
                   "escalations": dict(sorted(report["escalations"].items()))}
    excerpt = [line for line in text.splitlines() if line.startswith(("smallfleet:request_success_total",
               "smallfleet:route_decisions_total", "smallfleet:escalations_total", "smallfleet:local_answers_total",
               "smallfleet:routed_requests_total", "smallfleet:cost_usd_total", "smallfleet:top_rung_answer",
               "smallfleet:remote_priced",
               "smallfleet:requests_total", "smallfleet:e2e_request_latency_seconds_count",
               "smallfleet:prompt_tokens_total", "smallfleet:generation_tokens_total"))]
    return {"requests_sent": len(codes), "status_codes": {str(c): codes.count(c) for c in sorted(set(codes))},
            "metrics": from_metrics, "report": from_report, "agree": _agree(from_metrics, from_report),
            "metrics_excerpt": excerpt}
