"""`smallfleet bench dashboard --traces N`: how fast the dashboard's pages load on a store of N traces.

N synthetic traces (seeded; spread evenly over the last 30 days; five contracts with two-rung ladders,
plain model requests, some escalations, failures and 429s) are written to a fresh trace store, a real
gateway serves it, and each page is loaded `repeats` times: in Chromium through Playwright when it is
installed (navigation until the page has drawn its data), and always as the page's API call over HTTP.
The figures are the p50 (and max) per page. This is a simulation of a busy store, not real traffic: its
point is how the queries scale with the store's size.
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

CONTRACTS = ("triage", "extract", "route", "faq", "intent")
REASONS = ("low_mean_logprob", "invalid_output", "low_margin", "backend_error: backend_timeout")
PAGES = {"overview (24 h)": ("#/", "/ui/api/overview?hours=24"),
         "overview (7 days)": ("#/", "/ui/api/overview?hours=168"),
         "contract (24 h)": ("#/contracts/triage", "/ui/api/contracts/triage?hours=24"),
         "traces (24 h)": ("#/traces", "/ui/api/traces?hours=24"),
         "traces by reason (30 days)": ("#/traces?reason=low_margin", "/ui/api/traces?hours=720&reason=low_margin"),
         "fleet": ("#/fleet", "/ui/api/fleet")}


def synthetic(n: int, now: float, seed: int = 0) -> Any:  # noqa: ANN401 - yields Trace
    """`n` traces over the 30 days before `now`, oldest first."""
    from smallfleet.trace.record import Trace

    rng = random.Random(seed)
    span = 30 * 86400
    for i in range(n):
        created = now - span + span * i / n
        if rng.random() < 0.2:  # a plain model request
            yield Trace(id=f"{int(created * 1000):012x}{i:012x}", created_at=created, endpoint="/v1/chat/completions",
                        model="small", backend_model="small", output="ok", finish_reason="stop", prompt_tokens=20,
                        completion_tokens=4, latency_ms=rng.uniform(50, 400),
                        messages=[{"role": "user", "content": "hello"}])
            continue
        contract = rng.choice(CONTRACTS)
        escalated = rng.random() < 0.3
        failed = rng.random() < 0.02
        attempts = [{"rung": 0, "model": "small", "status": "rejected" if escalated else "accepted",
                     "reason": rng.choice(REASONS) if escalated else None, "latency_ms": 200.0, "location": "local",
                     "cost": 0.0, "signals": {"mean_logprob": -0.3}, "output": '{"category": "billing"}',
                     "started_at": created}]
        if escalated:
            attempts.append({"rung": 1, "model": "big", "status": "failed" if failed else "accepted", "reason": None,
                             "latency_ms": 900.0, "location": "remote", "cost": 0.0004, "started_at": created + 0.2,
                             "output": '{"category": "tech"}'})
        ok = not (escalated and failed)
        yield Trace(id=f"{int(created * 1000):012x}{i:012x}", created_at=created, endpoint="/v1/chat/completions",
                    model=contract, contract=contract, rung=(1 if escalated else 0) if ok else None,
                    backend_model=("big" if escalated else "small") if ok else None, status="ok" if ok else "error",
                    http_status=200 if ok else 502, attempts=attempts, cost=0.0004 if escalated else 0.0,
                    escalation_reason=attempts[0]["reason"], latency_ms=rng.uniform(100, 1500),
                    input="a ticket", messages=[{"role": "user", "content": "a ticket"}])


def run_dashboard_bench(traces: int = 10_000, repeats: int = 5, screenshots: Path | None = None) -> dict[str, Any]:
    import httpx

    from smallfleet.api.app import create_app
    from smallfleet.backends.base import ModelInfo
    from smallfleet.backends.fake import FakeBackend
    from smallfleet.contracts.spec import ContractSpec
    from smallfleet.fleet import Fleet
    from smallfleet.route.router import Contract, Router
    from smallfleet.sim.serve import serve_in_thread
    from smallfleet.trace.sqlite import SQLiteTraceStore

    with tempfile.TemporaryDirectory(prefix="smallfleet-dashboard-bench-") as tmp:
        store = SQLiteTraceStore(Path(tmp) / "traces.db")
        started, batch = time.perf_counter(), []
        for trace in synthetic(traces, time.time()):
            batch.append(trace)
            if len(batch) == 20_000:
                store.append_many(batch)
                batch = []
        store.append_many(batch)
        fill_s = time.perf_counter() - started
        size_mb = store.path.stat().st_size / 1e6
        small = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
        big = FakeBackend(info=ModelInfo(id="big", location="remote", context_window=None))
        fleet = Fleet.of_backends([small, big])
        contracts = {c: Contract.load(ContractSpec.model_validate({"name": c, "ladder": ["small", "big"]}))
                     for c in CONTRACTS}
        app = create_app(fleet, store, Router(fleet, contracts))
        api: dict[str, list[float]] = {name: [] for name in PAGES}
        browser: dict[str, list[float]] = {name: [] for name in PAGES}
        with serve_in_thread(app) as url:
            with httpx.Client(base_url=url, timeout=120) as http:
                for _ in range(repeats):
                    for name, (_, path) in PAGES.items():
                        t0 = time.perf_counter()
                        response = http.get(path)
                        api[name].append((time.perf_counter() - t0) * 1000)
                        response.raise_for_status()
            chromium = shutil.which("chromium") or shutil.which("chromium-browser")
            if chromium is not None:
                _browse(url, chromium, repeats, browser, screenshots)
    summary = {name: {"api_p50_ms": round(statistics.median(v), 1), "api_max_ms": round(max(v), 1),
                      **({"page_p50_ms": round(statistics.median(browser[name]), 1),
                          "page_max_ms": round(max(browser[name]), 1)} if browser[name] else {})}
               for name, v in api.items()}
    return {"traces": traces, "store_mb": round(size_mb, 1), "fill_s": round(fill_s, 1), "repeats": repeats,
            "browser": "chromium" if any(browser.values()) else None, "pages": summary}


def _browse(url: str, chromium: str, repeats: int, out: dict[str, list[float]], shots: Path | None) -> None:
    """Page loads in Chromium: from navigation until the page has drawn its data (`data-ready`); with `shots`, a
    screenshot of each page after its first load."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/ui#/")  # the page's script and styles cached once, as for a returning user
        page.wait_for_function("document.body.dataset.ready")
        for _ in range(repeats):
            for name, (hash_, api_path) in PAGES.items():
                hours = api_path.split("hours=")[1].split("&")[0] if "hours=" in api_path else "24"
                page.evaluate(f"sessionStorage.setItem('smallfleet-hours', '{hours}')")
                page.goto("about:blank")  # a full page load each time, not a hash change
                t0 = time.perf_counter()
                page.goto(f"{url}/ui{hash_}")
                page.wait_for_function("document.body.dataset.ready && document.body.dataset.ready !== ''",
                                       timeout=120_000)
                out[name].append((time.perf_counter() - t0) * 1000)
                if shots is not None and len(out[name]) == 1:
                    shots.mkdir(parents=True, exist_ok=True)
                    slug = name.split(" (")[0].replace(" ", "-")
                    if not (shots / f"{slug}.png").exists():
                        page.screenshot(path=str(shots / f"{slug}.png"))
        browser.close()
