"""Gateway benchmark: latency the gateway adds over calling the backend directly, under concurrency.

Setup, all on loopback: a fake OpenAI-compatible upstream with fixed latency (a bare ASGI app,
`fake_upstream`) in its own process, and the real smallfleet gateway (`smallfleet serve`, traces
on) in another, configured with that upstream as a remote model. One load generator with
`concurrency` closed-loop clients sends the same chat completion either straight to the
upstream ("direct") or through the gateway ("gateway"). Phases alternate (direct, gateway,
gateway, direct, ...) so machine noise hits both. Added latency at a percentile is the gateway
percentile minus the direct percentile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from smallfleet.errors import SmallfleetError
from smallfleet.stats import percentile


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status < 500:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not become healthy within {timeout_s:g}s")


def cpu_seconds(pid: int) -> float:
    """User+system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def process(args: list[str], env: dict[str, str], health_url: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_healthy(health_url, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _ping(session: aiohttp.ClientSession, url: str, model: str) -> bool:
    """One benchmark request (a short chat completion); whether it was answered 200."""
    body = {"model": model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 16}
    async with session.post(f"{url}/chat/completions", json=body) as response:
        await response.read()
        return response.status == 200


async def load(url: str, model: str, concurrency: int, requests: int) -> tuple[list[float], float, int]:
    """Closed-loop load: returns per-request latencies (ms), wall seconds, failures.

    aiohttp, not httpx: httpx's pool collapsed to ~85 requests/s at 100 concurrent clients here.
    """
    latencies: list[float] = []
    failures = 0
    remaining = requests
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker() -> None:
            nonlocal remaining, failures
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                if await _ping(session, url, model):
                    latencies.append((time.perf_counter() - t0) * 1000)
                else:
                    failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - started, failures


async def load_open(url: str, model: str, rate: float, requests: int, seed: int = 0) -> tuple[list[float], float, int]:
    """Open-loop load: `requests` arrivals at Poisson times of mean rate `rate` per second, each sent when its time
    comes whatever the others are doing. A latency counts from the request's scheduled time, so time spent
    waiting for the client's own connection pool counts too (no coordinated omission)."""
    import random

    rng = random.Random(seed)
    latencies: list[float] = []
    failures = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one(at: float) -> None:
            nonlocal failures
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            try:
                ok = await _ping(session, url, model)
            except aiohttp.ClientError:
                ok = False
            if ok:
                latencies.append((time.perf_counter() - at) * 1000)
            else:
                failures += 1

        started = time.perf_counter()
        at, arrivals = started + 0.05, []
        for _ in range(requests):
            at += rng.expovariate(rate)
            arrivals.append(at)
        await asyncio.gather(*(one(t) for t in arrivals))
        return latencies, time.perf_counter() - started, failures


@dataclass(frozen=True)
class Side:
    latencies_ms: list[float]
    seconds: float
    failures: int

    def summary(self) -> dict[str, float]:
        lat = self.latencies_ms
        return {"requests": len(lat), "failures": self.failures, "requests_per_s": round(len(lat) / self.seconds, 1),
                "p50_ms": round(percentile(lat, 50), 3), "p95_ms": round(percentile(lat, 95), 3),
                "p99_ms": round(percentile(lat, 99), 3), "mean_ms": round(statistics.fmean(lat), 3)}


def process_tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its direct children (uvicorn workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(c) for c in children.read_text().split()] if children.exists() else []
    return cpu_seconds(pid) + sum(cpu_seconds(k) for k in kids)


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """The `src` directory of this repository's revision `rev`, extracted to a temporary directory (`git archive`):
    a gateway started with it first on PYTHONPATH runs that revision's code on this environment's libraries."""
    root = Path(__file__).resolve().parents[3]
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "--quiet", "--end-of-options",
                             f"{rev}^{{commit}}"], capture_output=True, text=True, check=False).stdout.strip()
    if rev.startswith("-") or not commit:
        raise SmallfleetError(f"cannot read revision {rev!r} from {root}: not a commit of this checkout")
    with tempfile.TemporaryDirectory(prefix="smallfleet-baseline-") as tmp:
        archive = subprocess.run(["git", "-C", str(root), "archive", "--format=tar", commit, "src"],
                                 capture_output=True, check=False)
        if archive.returncode != 0:
            message = archive.stderr.decode(errors="replace").strip().splitlines()
            raise SmallfleetError(f"cannot read revision {rev!r} from {root}: {message[-1] if message else 'git failed'}")
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        yield Path(tmp) / "src"


def baseline_env(src: Path | None, env: dict[str, str]) -> dict[str, str]:
    """`env` with `src` (a `checkout`) first on PYTHONPATH: ahead of this environment's editable install."""
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))}


def run_gateway_bench(concurrency: int = 100, requests: int = 2000, rounds: int = 2,
                      latency_ms: float = 100.0, workers: int = 1, observability: bool = False,
                      rate: float | None = None, baseline: Path | None = None,
                      baseline_name: str = "baseline") -> dict[str, object]:
    """Direct against gateway, phases alternating. With `observability`, two gateways run side by side: one with
    metrics and spans off (`SMALLFLEET_METRICS=off`, no OTLP endpoint) and one with both on (spans exported
    over OTLP/HTTP to the fake upstream, which accepts them), so their costs compare within one run. With
    `baseline` (the `src` directory of another revision, `checkout`), a second gateway runs that code beside this
    one, so a change's cost or gain is measured within one run. With `rate`, the load is open-loop (Poisson
    arrivals at `rate` per second, `load_open`) instead of `concurrency` closed-loop clients."""
    up_port = free_port()
    gateways = {"gateway": free_port()} if not observability else {"gateway_observed_off": free_port(),
                                                                    "gateway_observed_on": free_port()}
    if baseline is not None:
        gateways["gateway_baseline"] = free_port()
    with tempfile.TemporaryDirectory(prefix="smallfleet-bench-") as home:
        fleet = Path(home) / "fleet.yaml"
        fleet.write_text(
            "models:\n"
            "  - id: upstream\n"
            "    kind: openai\n"
            f"    base_url: http://127.0.0.1:{up_port}/v1\n"
            "    model: fake\n"
            f"    concurrency: {max(concurrency * 2, 64)}\n"
            f"    max_queue: {concurrency * 4}\n"
        )
        base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k != "SMALLFLEET_OTEL"}
        env = {**base, "SMALLFLEET_CONFIG": str(fleet)}
        upstream_cmd = [sys.executable, "-m", "smallfleet.evals.fake_upstream", "--port", str(up_port),
                        "--latency", str(latency_ms / 1000)]
        with contextlib.ExitStack() as stack:
            stack.enter_context(process(upstream_cmd, {**env, "SMALLFLEET_HOME": home},
                                        f"http://127.0.0.1:{up_port}/v1/models"))
            procs = {}
            for name, port in gateways.items():
                side_home = Path(home) / name
                side_home.mkdir()
                side_env = {**env, "SMALLFLEET_HOME": str(side_home)}
                if name == "gateway_observed_off":
                    side_env["SMALLFLEET_METRICS"] = "off"
                if name == "gateway_observed_on":
                    side_env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{up_port}"
                if name == "gateway_baseline":
                    side_env = baseline_env(baseline, side_env)
                cmd = [sys.executable, "-m", "smallfleet.cli", "serve", "--port", str(port), "--workers", str(workers)]
                procs[name] = stack.enter_context(process(cmd, side_env, f"http://127.0.0.1:{port}/healthz"))
            direct_url = f"http://127.0.0.1:{up_port}/v1"
            cpu: dict[str, list[float]] = {name: [] for name in gateways}

            async def run() -> dict[str, Side]:
                await load(direct_url, "fake", concurrency, concurrency * 2)  # warm-up
                for port in gateways.values():
                    await load(f"http://127.0.0.1:{port}/v1", "upstream", concurrency, concurrency * 2)
                names = ["direct", *gateways]
                sides: dict[str, list[tuple[list[float], float, int]]] = {name: [] for name in names}
                for r in range(rounds):
                    for side in (names if r % 2 == 0 else names[::-1]):
                        url, model = (direct_url, "fake") if side == "direct" else \
                            (f"http://127.0.0.1:{gateways[side]}/v1", "upstream")
                        before = process_tree_cpu_seconds(procs[side].pid) if side != "direct" else 0.0
                        sides[side].append(await (load_open(url, model, rate, requests, seed=r) if rate else
                                                  load(url, model, concurrency, requests)))
                        if side == "direct":
                            continue
                        cpu[side].append(process_tree_cpu_seconds(procs[side].pid) - before)
                return {name: Side([x for lat, _, _ in runs for x in lat], sum(s for _, s, _ in runs),
                                   sum(f for _, _, f in runs)) for name, runs in sides.items()}

            results = asyncio.run(run())
    d = results["direct"].summary()
    out: dict[str, object] = {
        "benchmark": "gateway",
        "mode": f"open loop, Poisson arrivals at {rate:g}/s" if rate else f"closed loop, {concurrency} clients",
        "concurrency": concurrency,
        "gateway_workers": workers,
        "requests_per_side": requests * rounds,
        "backend_latency_ms": latency_ms,
        "direct": d,
    }
    if baseline is not None:
        out["baseline"] = baseline_name
    for name in gateways:
        g = results[name].summary()
        suffix = name.removeprefix("gateway")
        out[name] = g
        out[f"added_latency_ms{suffix}"] = {k: round(g[f"{k}_ms"] - d[f"{k}_ms"], 3) for k in ("p50", "p95", "p99")}
        out[f"gateway_cpu_ms_per_request{suffix}"] = round(
            sum(cpu[name]) * 1000 / max(1, len(results[name].latencies_ms)), 3)
    out["target_added_ms"] = {"p50": 2.0, "p99": 10.0}
    out["cpu_cores"] = os.cpu_count()
    return out
