"""The dashboard in a real browser (Debian's Chromium driven by Playwright, no browser download): every page,
against a live gateway with real traces, showing what `smallfleet report` says."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smallfleet.api.app import create_app
from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend, FakeReply
from smallfleet.contracts.spec import ContractSpec
from smallfleet.fleet import Fleet
from smallfleet.route.report import report
from smallfleet.route.router import Contract, Router
from smallfleet.sim.serve import serve_in_thread
from smallfleet.trace.sqlite import SQLiteTraceStore, TraceQuery

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("SMALLFLEET_REQUIRE_BROWSER") == "1":
    raise RuntimeError("the dashboard tests need Chromium (apt-get install chromium); `make test` installs it")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs it)")
SCHEMA = {"type": "object", "properties": {"category": {"enum": ["billing", "tech"]}}, "required": ["category"],
          "additionalProperties": False}
ADMIN = "admin-secret-1"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, SQLiteTraceStore]]:
    home = tmp_path_factory.mktemp("ui")
    store = SQLiteTraceStore(home / "traces.db")
    (home / "calibration").mkdir()
    curve = [{"threshold": t, "local_share": 1 - t, "agreement": 0.9 + t / 10, "accepted": 10} for t in (0.1, 0.5, 0.9)]
    (home / "calibration" / "triage.json").write_text(json.dumps({
        "contract": "triage", "calibrated_at": 0, "models": {"small": {"min_mean_logprob": -0.5}},
        "report": {"rungs": [{"rung": 0, "model": "small", "signal": "mean_logprob", "threshold": 0.5,
                              "curve": curve}]}}))
    small = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
    big = FakeBackend(info=ModelInfo(id="big", location="remote", context_window=None, price_per_1k_output=1.0))
    spec = ContractSpec.model_validate({"name": "triage", "output": {"json_schema": SCHEMA},
                                        "ladder": [{"model": "small", "accept": {"min_mean_logprob": -0.5}}, "big"]})
    fleet = Fleet.of_backends([small, big])
    app = create_app(fleet, store, Router(fleet, {"triage": Contract.load(spec)}), admin_key=ADMIN)
    small.enqueue([FakeReply('{"category": "tech"}', logprob=-0.1)] * 3
                  + [FakeReply('{"category": "tech"}', logprob=-3.0)] * 2 + [FakeReply("hello", logprob=-0.1)])
    big.enqueue(['{"category": "billing"}'] * 2)
    with serve_in_thread(app) as url:
        with httpx.Client(base_url=url, timeout=10) as http:
            for i in range(5):
                assert http.post("/v1/chat/completions", json={"model": "triage", "messages": [
                    {"role": "user", "content": f"ticket {i}"}]}).status_code == 200
            assert http.post("/v1/chat/completions", json={"model": "small", "messages": [
                {"role": "user", "content": "hi"}]}).status_code == 200
            assert http.post("/v1/chat/completions", json={"model": "nope", "messages": [
                {"role": "user", "content": "hi"}]}).status_code == 400
        yield url, store


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


def open_page(browser, url: str, hash_: str, key: str | None = ADMIN, refused: bool = False):  # noqa: ANN001, ANN201
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    if key:
        page.add_init_script(f"sessionStorage.setItem('smallfleet-key', {json.dumps(key)})")
    page.goto(f"{url}/ui{hash_}")
    page.wait_for_function("document.body.dataset.ready && document.body.dataset.ready !== ''")
    assert (page.evaluate("document.body.dataset.ready") == "error") is refused, page.inner_text("#page")
    assert not errors, errors
    return page


def figure(page, name: str) -> str:  # noqa: ANN001
    return page.inner_text(f"[data-figure={name}]")


def test_the_overview_shows_what_the_report_says(gateway, browser) -> None:  # noqa: ANN001
    url, store = gateway
    expected = report(store.query(TraceQuery(limit=100, contract="triage")), {})
    page = open_page(browser, url, "#/")
    assert figure(page, "requests") == "7"  # 5 routed, 1 plain, 1 refused
    assert page.inner_text("[data-local=triage]") == f"{100 * expected['local_share']:.1f}%" == "60.0%"
    assert figure(page, "cost_all_top_rung_usd") == f"${expected['cost_all_top_rung_usd']:.6f}"
    assert figure(page, "cost_usd") == f"${expected['cost_usd']:.6f}"
    assert figure(page, "error_rate") == f"{100 / 7:.1f}%"
    assert page.locator(".chart canvas").count() >= 3  # the charts were drawn
    page.screenshot(path=str(Path(store.path).parent / "overview.png"))
    page.close()


def test_clicking_through_contract_traces_and_a_trace(gateway, browser) -> None:  # noqa: ANN001
    url, store = gateway
    page = open_page(browser, url, "#/")
    page.click("text=triage")
    page.wait_for_function("document.body.dataset.ready === '#/contracts/triage'")
    assert page.inner_text("[data-reason=low_mean_logprob]") == "2"
    assert page.locator("#calibration canvas").count() == 1  # the calibration curve, with the chosen threshold
    assert "chosen 0.500" in page.inner_text("#calibration")
    assert page.inner_text("[data-rung-share='0']") == "60.0%" and page.inner_text("[data-rung-share='1']") == "40.0%"
    page.click("text=low_mean_logprob")  # the escalation reason filters the trace explorer
    page.wait_for_function("document.body.dataset.ready.startsWith('#/traces?')")
    rows = page.locator("[data-trace]")
    assert rows.count() == 2
    trace_id = rows.first.get_attribute("data-trace")
    rows.first.click()
    page.wait_for_function(f"document.body.dataset.ready === '#/traces/{trace_id}'")
    assert page.inner_text("[data-attempt='0']") == "rejected" and page.inner_text("[data-attempt='1']") == "accepted"
    assert figure(page, "answered_by") == "big"
    page.close()


def test_without_the_admin_key_nothing_is_shown_and_with_it_a_label_is_attached(gateway, browser) -> None:  # noqa: ANN001
    url, store = gateway
    trace_id = store.query(TraceQuery(limit=1, contract="triage"))[0].id
    page = open_page(browser, url, f"#/traces/{trace_id}", key=None, refused=True)
    assert "admin key" in page.inner_text("#error") and "ticket" not in page.inner_text("#page")
    page.close()
    page = open_page(browser, url, f"#/traces/{trace_id}", key=ADMIN)
    page.fill("input[name=reference]", '{"category": "tech"}')
    page.click("text=Attach label")
    page.wait_for_function("document.querySelector('#label') && document.querySelector('#label').innerText.includes('dashboard')")
    assert store.label_sources("triage")[trace_id] == ('{"category": "tech"}', "dashboard")
    page.close()


def test_the_fleet_page_lists_models_queues_and_breakers(gateway, browser) -> None:  # noqa: ANN001
    url, _ = gateway
    page = open_page(browser, url, "#/fleet")
    assert page.inner_text("[data-breaker=small]") == "closed" and page.inner_text("[data-breaker=big]") == "closed"
    assert "triage" in page.inner_text("#page")
    page.close()
