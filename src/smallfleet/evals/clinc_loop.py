"""`smallfleet demo --workload clinc150`: the distillation loop on real user text, through a live gateway.

1. A gateway serves one contract, `clinc-intent` (a choice among 150 intents and "oos"), whose
   ladder is only the teacher: at cold start no local model is trusted with a 151-way choice.
2. Cold-start traffic (`traffic` requests from CLINC150's train split) goes through the gateway;
   the teacher answers each (SIMULATED: it knows the gold intent and is wrong `1 - accuracy` of
   the time, reproducibly) and the gateway traces everything. No gold label is attached.
3. `distill run` builds the dataset from those traces, trains the classifier specialist, gates it
   against the zero-shot SmolLM2 (on a sample: 151 options make its prompt long) and promotes it.
4. The gateway, never restarted, picks the promotion up; CLINC150's test split (4,500 in-scope and
   1,000 out-of-scope requests) is then routed through it. The report compares local share,
   accuracy of the local answers, overall accuracy and cost with sending everything to the teacher,
   judged against the gold intents, in scope and out of scope separately.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from smallfleet.config.settings import Settings
from smallfleet.distill.loop import DistillOptions, run_distill
from smallfleet.evals.fake_upstream import FakeUpstream
from smallfleet.sim.serve import serve_in_thread
from smallfleet.workload import clinc150

CONTRACT = "clinc-intent"
TEACHER_PRICE = {"price_per_1k_input": 0.0025, "price_per_1k_output": 0.01}
INSTRUCTIONS = ("You route requests sent to a personal assistant. Answer with the request's intent; answer oos when "
                "the request fits none of the intents.")


def _fraction(key: str) -> float:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


@dataclass
class ClincTeacher:
    """SIMULATED teacher: the gold intent with probability `accuracy`, else another intent (both by hash)."""

    gold: dict[str, str]
    intents: list[str]
    accuracy: float

    def answer(self, text: str) -> str:
        gold = self.gold.get(text, clinc150.OOS)
        if _fraction("correct:" + text) < self.accuracy:
            return gold
        others = [i for i in self.intents if i != gold]
        return others[int(_fraction("wrong:" + text) * len(others)) % len(others)]

    def __call__(self, request: dict[str, Any]) -> str:
        text = next((m.get("content") or "" for m in reversed(request.get("messages") or [])
                     if m.get("role") == "user"), "")
        return json.dumps({"answer": self.answer(text)})  # the portable form of a choice (see constrain.remote)


def _fleet(teacher_url: str, intents: list[str], target: float) -> dict[str, Any]:
    return {"models": [{"id": "teacher", "kind": "openai", "base_url": teacher_url + "/v1",
                        "model": "stand-in-teacher (simulated)", "logprobs": False, **TEACHER_PRICE},
                       {"id": "smollm2-135m", "kind": "llamacpp", "n_ctx": 4096}],
            "contracts": [{"name": CONTRACT, "instructions": INSTRUCTIONS, "output": {"choice": intents},
                           "quality_target": target, "max_tokens": 16, "ladder": ["teacher"]}]}


async def _send(base_url: str, texts: list[str], concurrency: int) -> list[dict[str, Any]]:
    """POST every text to the contract; the answer, the serving model, cost and latency of each."""
    results: list[dict[str, Any]] = [{} for _ in texts]
    queue = list(enumerate(texts))

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            i, text = queue.pop()
            started = time.perf_counter()
            r = await client.post("/v1/chat/completions", json={"model": CONTRACT,
                                                                "messages": [{"role": "user", "content": text}]})
            body = r.json()
            results[i] = {"status": r.status_code, "model": r.headers.get("x-smallfleet-model"),
                          "cost": float(r.headers.get("x-smallfleet-cost", 0)),
                          "answer": body["choices"][0]["message"]["content"] if r.status_code == 200 else None,
                          "latency_ms": (time.perf_counter() - started) * 1000}

    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return results


def _share(xs: list[bool]) -> float | None:
    return round(sum(xs) / len(xs), 4) if xs else None


def _routing(results: list[dict[str, Any]], queries: list[clinc150.Query], teacher: ClincTeacher,
             teacher_cost: float) -> dict[str, Any]:
    def figures(idx: list[int]) -> dict[str, Any]:
        local = [i for i in idx if (results[i].get("model") or "").startswith(CONTRACT + "-specialist@")]
        right = [results[i].get("answer") == queries[i].intent for i in idx]
        teacher_right = [teacher.answer(queries[i].text) == queries[i].intent for i in idx]
        spent = sum(results[i].get("cost", 0.0) for i in idx)
        return {"requests": len(idx), "failed": sum(results[i].get("status") != 200 for i in idx),
                "local_share": _share([i in set(local) for i in idx]),
                "local_answers_accuracy": _share([results[i].get("answer") == queries[i].intent for i in local]),
                "accuracy": _share(right), "all_teacher_accuracy": _share(teacher_right),
                "quality_loss_points": (round(100 * (sum(teacher_right) - sum(right)) / len(idx), 2) if idx else None),
                "cost_usd": round(spent, 4), "all_teacher_cost_usd": round(teacher_cost * len(idx), 4),
                "cost_reduction": round(1 - spent / (teacher_cost * len(idx)), 4) if idx and teacher_cost else None}

    everything = list(range(len(queries)))
    latencies = [r["latency_ms"] for r in results if "latency_ms" in r]
    return {"all": figures(everything),
            "in_scope": figures([i for i in everything if queries[i].intent != clinc150.OOS]),
            "out_of_scope": figures([i for i in everything if queries[i].intent == clinc150.OOS]),
            "latency_ms_p50": round(statistics.median(latencies), 1) if latencies else None}


def run_clinc(traffic: int = 1000, test_limit: int | None = None, teacher_accuracy: float = 0.97,
              target: float = 0.95, base_limit: int = 60, concurrency: int = 8, seed: int = 0,
              home: Path | None = None) -> dict[str, Any]:
    data = clinc150.load()
    intents = clinc150.intents(data)
    cold = clinc150.traffic(data, traffic, seed)
    test = clinc150.test_queries(data)
    if test_limit is not None:
        test = [test[i] for i in sorted(set(int(j * len(test) / test_limit) for j in range(test_limit)))]
    gold = {q.text: q.intent for split in data.values() for q in split}
    teacher = ClincTeacher(gold, intents, teacher_accuracy)
    out: dict[str, Any] = {"data": clinc150.ATTRIBUTION,
                           "simulation": f"the teacher is a stand-in answering from gold intents with "
                                         f"{teacher_accuracy:.0%} accuracy, not a language model",
                           "traffic": traffic, "test_queries": len(test)}
    from smallfleet.api.app import app_from_settings

    with tempfile.TemporaryDirectory(prefix="smallfleet-clinc-") as tmp, \
            serve_in_thread(FakeUpstream(latency_s=0.05, responder=teacher)) as teacher_url:
        root = home or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        fleet = root / "fleet.yaml"
        fleet.write_text(yaml.safe_dump(_fleet(teacher_url, intents, target)))
        settings = Settings(home=root, config_path=fleet)
        with serve_in_thread(app_from_settings(settings)) as gateway:
            started = time.perf_counter()
            cold_results = asyncio.run(_send(gateway, [q.text for q in cold], concurrency))
            costs = [r["cost"] for r in cold_results if r.get("status") == 200]
            teacher_cost = statistics.fmean(costs) if costs else 0.0
            out["cold_start"] = {"failed": sum(r.get("status") != 200 for r in cold_results),
                                 "minutes": round((time.perf_counter() - started) / 60, 2),
                                 "teacher_cost_per_request_usd": round(teacher_cost, 6)}
            distilled = run_distill(settings, CONTRACT, DistillOptions(base_model="smollm2-135m",
                                                                       base_limit=base_limit))
            out["distill"] = distilled
            if distilled.get("promoted"):
                _wait_for_ladder(gateway, distilled["model_id"])
            started = time.perf_counter()
            served = asyncio.run(_send(gateway, [q.text for q in test], concurrency))
            out["routing"] = _routing(served, test, teacher, teacher_cost)
            out["routing"]["minutes"] = round((time.perf_counter() - started) / 60, 2)
    return out


def _wait_for_ladder(gateway: str, model_id: str, timeout_s: float = 60.0) -> None:
    """Block until the running gateway serves `model_id` as the contract's first rung."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=gateway) as client:
        while time.monotonic() < deadline:
            models = client.get("/v1/models").json()["data"]
            ladder = next((m.get("smallfleet", {}).get("ladder") for m in models if m["id"] == CONTRACT), None)
            if ladder and ladder[0] == model_id:
                return
            time.sleep(0.2)
    raise RuntimeError(f"the gateway did not pick up {model_id} within {timeout_s:g} s")
