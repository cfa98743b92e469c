"""`smallfleet bench load`: many concurrent clients (Locust) against a real gateway process in front of a fake
upstream, for minutes: are there 5xx, is overload answered 429 with Retry-After, does memory stay flat, is
every answered request traced?

Three processes: the fake upstream (`evals.fake_upstream`, fixed latency), `smallfleet serve` on a fleet file
whose one model is that upstream over HTTP (bounded concurrency and queue, so overload is refused, not
queued without end), and Locust headless (`evals.locustfile`). The gateway's resident memory is sampled
every second; growth is measured from the end of the warm-up to the end of the run. Traces are counted in
the gateway's store afterwards.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from smallfleet.evals.gateway import wait_healthy
from smallfleet.sim.serve import free_port


@dataclass(frozen=True)
class LoadOptions:
    users: int = 500
    duration_s: float = 300.0
    warmup_s: float = 60.0
    spawn_rate: float = 100.0
    pacing_s: float = 1.0  # each user sends one request per pacing_s (if its answer came back in time)
    upstream_latency_s: float = 0.05
    concurrency: int = 64  # requests the gateway sends the upstream at once
    max_queue: int = 128  # waiting beyond that: 429
    queue_timeout_s: float = 2.0


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run_load_bench(options: LoadOptions) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="smallfleet-load-") as tmp:
        home = Path(tmp)
        upstream_port, gateway_port = free_port(), free_port()
        fleet = home / "fleet.yaml"
        fleet.write_text(
            "models:\n"
            f"  - {{id: upstream, kind: openai, base_url: 'http://127.0.0.1:{upstream_port}/v1', model: fake, "
            f"concurrency: {options.concurrency}, max_queue: {options.max_queue}, "
            f"queue_timeout_s: {options.queue_timeout_s}}}\n")
        env = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "SMALLFLEET_DATABASE_URL")}
        env.update(SMALLFLEET_HOME=str(home), SMALLFLEET_CONFIG=str(fleet))
        procs: list[subprocess.Popen[bytes]] = []
        try:
            upstream = subprocess.Popen([sys.executable, "-m", "smallfleet.evals.fake_upstream", "--port",
                                         str(upstream_port), "--latency", str(options.upstream_latency_s)],
                                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(upstream)
            gateway = subprocess.Popen([sys.executable, "-m", "smallfleet.cli", "serve", "--port", str(gateway_port)],
                                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            procs.append(gateway)
            base = f"http://127.0.0.1:{gateway_port}"
            wait_healthy(f"{base}/healthz", gateway)
            out = home / "locust.json"
            locust = subprocess.Popen(
                [sys.executable, "-m", "locust", "-f", str(Path(__file__).with_name("locustfile.py")), "--headless",
                 "-u", str(options.users), "-r", str(options.spawn_rate), "-t", f"{int(options.duration_s)}s",
                 "--host", base, "--only-summary", "--stop-timeout", "30", "--loglevel", "WARNING"],
                env={**env, "SMALLFLEET_LOAD_OUT": str(out), "SMALLFLEET_LOAD_PACING": str(options.pacing_s)},
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            procs.append(locust)
            started, samples = time.monotonic(), []
            while locust.poll() is None:
                samples.append((time.monotonic() - started, _rss_kib(gateway.pid)))
                time.sleep(1.0)
            locust_err = locust.stderr.read().decode(errors="replace") if locust.stderr else ""
            if not out.exists():
                raise RuntimeError(f"locust wrote no results: {locust_err[-800:]}")
            counts = json.loads(out.read_text())
            gateway.terminate()
            gateway.wait(timeout=30)  # a clean shutdown: every queued trace is committed
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
        db = sqlite3.connect(home / "traces.db")
        stored = {row[0] for row in db.execute("SELECT id FROM traces WHERE http_status = 200")}
        traced_429 = db.execute("SELECT COUNT(*) FROM traces WHERE http_status = 429").fetchone()[0]
        db.close()
    statuses: dict[str, int] = counts["statuses"]
    answered: list[str] = counts["answered"]
    after_warmup = [kib for t, kib in samples if t >= options.warmup_s] or [kib for _, kib in samples]
    baseline, final = after_warmup[0], max(after_warmup[-max(1, len(after_warmup) // 10):])
    total = sum(statuses.values())
    server_errors = sum(n for s, n in statuses.items() if s[:1] == "5")
    return {
        "options": asdict(options),
        "requests": total,
        "statuses": statuses,
        "requests_per_s": round(total / options.duration_s, 1),
        "server_errors": server_errors,
        "overload_429_with_retry_after": statuses.get("429_retry_after", 0),
        "overload_429_without_retry_after": statuses.get("429_without_retry_after", 0),
        "answered_200": len(answered),
        "answered_without_trace": len([t for t in answered if t not in stored]),
        "traced_429": traced_429,
        "rss_mib": {"after_warmup": round(baseline / 1024, 1), "end": round(final / 1024, 1),
                    "max": round(max(kib for _, kib in samples) / 1024, 1)},
        "rss_growth_after_warmup": round(final / baseline - 1, 4) if baseline else None,
        "rss_samples": len(samples),
    }
