"""Three gateway replicas (separate processes, ports and homes) on one PostgreSQL database behave as one fleet:
every answer traced in the shared store, and a small budget hammered through all three at once never passed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from smallfleet.auth.keys import KeyStore
from smallfleet.evals.gateway import wait_healthy
from smallfleet.guard.budget import spent_by_window
from smallfleet.sim.serve import free_port
from smallfleet.trace.postgres import PostgresTraceStore
from smallfleet.trace.store import TraceQuery

FLEET = """\
models:
  - {id: echo, kind: fake, latency_s: 0.005}
  - {id: teacher, kind: fake, location: remote, latency_s: 0.02, price_per_1k_input: 0.1, price_per_1k_output: 0.1}
contracts:
  - name: summarise
    max_tokens: 20
    budget_usd: 5.0
    budget_per_day_usd: 0.5
    ladder: [{model: teacher}]
tenants:
  - {name: shop, budget_per_month_usd: 0.3}
  - {name: lab}
"""


def start_replica(home: Path, url: str, fleet: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(SMALLFLEET_HOME=str(home), SMALLFLEET_CONFIG=str(fleet), SMALLFLEET_DATABASE_URL=url)
    proc = subprocess.Popen([sys.executable, "-m", "smallfleet.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(f"{base}/healthz", proc)
    return proc, base


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str, keys: dict[str, str]):  # noqa: ANN201
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    started = [start_replica(tmp_path / f"home{i}", pg_url, fleet) for i in range(3)]
    yield started
    for proc, _ in started:
        if proc.poll() is None:
            proc.terminate()
            proc.communicate(timeout=20)


@pytest.fixture
def keys(pg_url: str) -> dict[str, str]:
    """API keys created once, in the shared database: every replica knows them."""
    store = KeyStore(database_url=pg_url)
    try:
        return {tenant: store.create(tenant)[1] for tenant in ("shop", "lab")}
    finally:
        store.close()


def test_three_replicas_hammering_one_small_budget_never_pass_it(keys, replicas, pg_url: str) -> None:  # noqa: ANN001
    bases = [base for _, base in replicas]

    def ask(i: int) -> tuple[str, int, float]:
        base, tenant = bases[i % 3], ("shop", "lab")[i % 2]
        with httpx.Client(timeout=20) as http:
            r = http.post(f"{base}/v1/chat/completions", headers={"Authorization": f"Bearer {keys[tenant]}"},
                          json={"model": "summarise", "messages": [
                              {"role": "user", "content": f"please summarise request number {i} " + "word " * 20}]})
        return base, r.status_code, float(r.headers.get("x-smallfleet-cost", 0))

    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(ask, range(240)))
    store = PostgresTraceStore(pg_url)
    try:
        spent = spent_by_window(store, "contract", "summarise", time.time())
        shop = spent_by_window(store, "tenant", "shop", time.time())
        traces = store.query(TraceQuery(contract="summarise", limit=1000))
    finally:
        store.close()
    by_status = Counter(status for _, status, _ in results)
    answered_by = Counter(base for base, status, _ in results if status == 200)
    assert set(by_status) == {200, 429}, by_status  # answered while the budget lasted, then 429, never a 5xx
    # each call holds its bound (~250 tokens: $0.025) and costs ~$0.0045, so ~100 answers fit the day's $0.50
    assert sum(answered_by.values()) > 50 and len(answered_by) == 3, answered_by  # every replica answered some
    assert spent["day"] <= 0.5  # the contract's day budget, shared by three processes: never passed
    assert 0 < shop["month"] <= 0.3  # nor the tenant's month budget (its keys known to all three)
    assert spent["day"] > 0.5 - 0.025  # and used up to within one call's hold (230 prompt bytes, 20 tokens)
    costs = sum(t.cost or 0 for t in traces)
    assert len(traces) == 240 and abs(costs - spent["day"]) < 1e-6  # every request traced; ledger = trace costs
    assert abs(sum(c for _, _, c in results) - costs) < 1e-4


def test_a_replica_killed_mid_burst_loses_no_acknowledged_trace(keys, replicas, pg_url: str) -> None:  # noqa: ANN001
    """kill -9 of one replica while all three take a write burst: every answer a client got is in the database."""
    received: list[str] = []
    lock = threading.Lock()
    bases = [base for _, base in replicas]
    victim_proc, victim = replicas[0]

    def client(worker: int) -> None:
        base = bases[worker % 3]
        with httpx.Client(timeout=10) as http:
            for i in range(150):
                try:
                    r = http.post(f"{base}/v1/chat/completions", headers={"Authorization": f"Bearer {keys['lab']}"},
                                  json={"model": "echo", "messages": [{"role": "user", "content": f"{worker}-{i}"}]})
                except httpx.HTTPError:
                    if base == victim:
                        return  # the killed replica is gone
                    raise
                if r.status_code == 200:
                    with lock:
                        received.append(r.headers["x-smallfleet-trace-id"])

    threads = [threading.Thread(target=client, args=(w,)) for w in range(12)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(received) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    victim_proc.send_signal(signal.SIGKILL)  # mid-burst: requests in flight on it
    victim_proc.wait(timeout=10)
    for t in threads:
        t.join(timeout=60)
    store = PostgresTraceStore(pg_url)
    try:
        stored = {t.id for t in store.query(TraceQuery(model="echo", limit=100_000))}
    finally:
        store.close()
    assert len(received) >= 300
    missing = [t for t in received if t not in stored]
    assert missing == [], f"{len(missing)} of {len(received)} answered requests have no trace"
