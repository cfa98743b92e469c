"""`serve --workers 2`: one scrape, served by either worker, adds up both workers' counts; JSON logs per request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from smallfleet.evals.gateway import wait_healthy
from smallfleet.sim.serve import free_port


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models:\n  - {id: echo, kind: fake, latency_s: 0.05}\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(SMALLFLEET_HOME=str(tmp_path), SMALLFLEET_CONFIG=str(fleet))
    proc = subprocess.Popen([sys.executable, "-m", "smallfleet.cli", "serve", "--port", str(port), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(f"{url}/healthz", proc)
    return proc, url


def stop(proc: subprocess.Popen[bytes]) -> str:
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    return err.decode()


def success_count(text: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('smallfleet:request_success_total{') and 'model_name="echo"' in line)


def test_a_scrape_adds_up_every_worker(tmp_path: Path) -> None:
    proc, url = start(tmp_path, "--workers", "2")
    try:
        def ask(i: int) -> int:  # a new connection each, 8 at a time: both workers get some
            with httpx.Client(timeout=10) as one:
                return one.post(f"{url}/v1/chat/completions", json={"model": "echo", "messages": [
                    {"role": "user", "content": f"m{i}"}]}).status_code

        sent = 0
        with ThreadPoolExecutor(16) as pool:  # until both workers have answered some (each writes its own file)
            while sent < 800 and len(files(tmp_path)) < 2:
                assert list(pool.map(ask, range(sent, sent + 40))) == [200] * 40
                sent += 40
        assert len(files(tmp_path)) == 2, "one worker took every connection"
        with httpx.Client(timeout=10) as http:
            scrapes = [success_count(http.get(f"{url}/metrics").text) for _ in range(6)]
    finally:
        stop(proc)
    assert scrapes == [float(sent)] * 6  # whichever worker answers the scrape


def test_json_logs_carry_the_trace_id_of_each_request(tmp_path: Path) -> None:
    proc, url = start(tmp_path, "--log-format", "json")
    try:
        with httpx.Client(timeout=10) as http:
            response = http.post(f"{url}/v1/chat/completions", json={"model": "echo", "messages": [
                {"role": "user", "content": "hello"}]})
    finally:
        err = stop(proc)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("message") == "request"]
    assert [r["trace_id"] for r in requests] == [response.headers["x-smallfleet-trace-id"]]
    assert requests[0]["http_status"] == 200 and requests[0]["model"] == "echo"


def files(home: Path) -> list[Path]:
    """The counter files of the workers of the one gateway running on `home`."""
    return list((home / "metrics").glob("*/counter_*.db"))
