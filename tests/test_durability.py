"""No trace lost under kill -9: every answer a client received has its trace on disk."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from smallfleet.evals.gateway import wait_healthy
from smallfleet.sim.serve import free_port


def test_traces_of_answered_requests_survive_kill_9(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models:\n  - {id: echo, kind: fake, latency_s: 0.01}\n")
    port = free_port()
    env = {**os.environ, "SMALLFLEET_HOME": str(tmp_path), "SMALLFLEET_CONFIG": str(fleet)}
    proc = subprocess.Popen([sys.executable, "-m", "smallfleet.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    received: list[str] = []
    lock = threading.Lock()
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)

        def client(worker: int) -> None:
            with httpx.Client(timeout=10) as http:
                for i in range(200):
                    try:
                        r = http.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                                      json={"model": "echo", "messages": [{"role": "user", "content": f"{worker}-{i}"}]})
                    except httpx.HTTPError:
                        return  # the gateway is gone
                    if r.status_code == 200:
                        with lock:
                            received.append(r.headers["x-smallfleet-trace-id"])

        threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(received) < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # mid-traffic: requests are in flight
        proc.wait(timeout=10)
        for t in threads:
            t.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(received) >= 100
    db = sqlite3.connect(tmp_path / "traces.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {row[0] for row in db.execute("SELECT id FROM traces")}
    missing = [t for t in received if t not in stored]
    assert missing == [], f"{len(missing)} of {len(received)} answered requests have no trace"
