"""A running gateway follows promotions and rollbacks within seconds, under traffic, failing no request."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import yaml

from smallfleet.api.app import app_from_settings
from smallfleet.config.settings import Settings
from smallfleet.distill.loop import DistillOptions, run_distill
from smallfleet.distill.promote import promote_version
from smallfleet.evals.fake_upstream import FakeUpstream
from smallfleet.sim.serve import serve_in_thread
from smallfleet.specialists.registry import SpecialistRegistry
from tests.distill.conftest import INTENTS, intent_items, seed

ITEMS = intent_items(240)
GOLD = {text: label for text, label in ITEMS}


def teacher(request: dict) -> str:
    """A remote rung that knows the gold answers (the portable choice form is {"answer": ...})."""
    text = request["messages"][-1]["content"]
    return json.dumps({"answer": GOLD.get(text, "billing")})


def test_gateway_swaps_versions_under_traffic_without_failing_requests(tmp_path: Path, monkeypatch) -> None:
    with serve_in_thread(FakeUpstream(responder=teacher)) as teacher_url:
        home = tmp_path / "home"
        home.mkdir()
        fleet = home / "fleet.yaml"
        fleet.write_text(yaml.safe_dump({
            "models": [{"id": "small", "kind": "fake"},
                       {"id": "teacher", "kind": "openai", "base_url": teacher_url + "/v1", "model": "t",
                        "logprobs": False}],
            "contracts": [{"name": "intent", "quality_target": 0.9, "output": {"choice": list(INTENTS)},
                           "ladder": ["small", "teacher"]}]}))
        monkeypatch.setenv("SMALLFLEET_CONFIG", str(fleet))
        settings = Settings(home=home, config_path=fleet)
        seed(settings, ITEMS)
        assert run_distill(settings, "intent", DistillOptions(base=False))["promoted"]  # v1
        assert run_distill(settings, "intent", DistillOptions(base=False))["version"] == "v2"  # kept, not promoted
        served: list[tuple[int, str | None]] = []
        stop = threading.Event()
        with serve_in_thread(app_from_settings(settings)) as gateway:

            def client(k: int) -> None:
                with httpx.Client(base_url=gateway, timeout=30) as http:
                    i = k
                    while not stop.is_set():
                        text = ITEMS[i % len(ITEMS)][0]
                        r = http.post("/v1/chat/completions", json={
                            "model": "intent", "messages": [{"role": "user", "content": text}]})
                        served.append((r.status_code, r.headers.get("x-smallfleet-model")))
                        i += 4

            threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()

            def wait_for(model: str) -> float:
                started = time.monotonic()
                while time.monotonic() - started < 10:
                    if served and served[-1][1] == model and served[-2:][0][1] == model:
                        return time.monotonic() - started
                    time.sleep(0.05)
                raise AssertionError(f"{model} not serving within 10 s; last: {served[-3:]}")

            try:
                wait_for("intent-specialist@v1")
                promote_version(settings, "intent", "v2", "test: hot swap")
                swap = wait_for("intent-specialist@v2")
                SpecialistRegistry(home).rollback("intent", "test: live agreement fell")
                back = wait_for("intent-specialist@v1")
            finally:
                stop.set()
                for t in threads:
                    t.join()
    assert swap < 10 and back < 10
    assert len(served) > 20 and all(status == 200 for status, _ in served), [s for s in served if s[0] != 200][:3]
