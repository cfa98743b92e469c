"""Live quality: background shadow checks, automatic rollback on low live agreement, the watch's retrain triggers."""

from __future__ import annotations

import asyncio
from pathlib import Path
import time

from smallfleet.backends.base import ModelInfo
from smallfleet.backends.fake import FakeBackend, FakeReply
from smallfleet.config.settings import Settings
from smallfleet.contracts.spec import ContractSpec
from smallfleet.distill.loop import DistillOptions, run_distill
from smallfleet.distill.watch import WatchOptions, watch_once
from smallfleet.fleet import Fleet
from smallfleet.guard.budget import spent_by_window
from smallfleet.route.live import LiveSampler, sampled
from smallfleet.runtime import meter_for
from smallfleet.route.router import Contract, Router
from smallfleet.specialists.registry import SpecialistRegistry
from smallfleet.trace.record import Trace, new_trace_id
from smallfleet.trace.sqlite import SQLiteTraceStore
from tests.distill.conftest import INTENTS, intent_items, seed


def live_router(egress: str = "allow", teacher_latency: float = 0.0, shadow_rate: float = 1.0):
    small = FakeBackend(info=ModelInfo(id="small", location="local", context_window=4096))
    teacher = FakeBackend(info=ModelInfo(id="teacher", location="remote", context_window=None,
                                         price_per_1k_output=1.0), latency_s=teacher_latency)
    spec = ContractSpec.model_validate({"name": "intent", "output": {"choice": list(INTENTS)}, "egress": egress,
                                        "shadow_rate": shadow_rate, "ladder": ["small", "teacher"]})
    return small, teacher, Router(Fleet.of_backends([small, teacher]), {"intent": Contract.load(spec)})


def test_sampled_local_answers_are_checked_by_the_top_rung_in_the_background(store) -> None:  # noqa: ANN001
    small, teacher, router = live_router()
    router.fleet.guard.meter = meter_for(store, router, lambda _: None)
    stored: dict[str, tuple[str, str]] = {}
    live = LiveSampler(router, lambda tid, ref, source: stored.__setitem__(tid, (ref, source)))

    async def scenario() -> None:
        small.enqueue([FakeReply("billing", logprob=-0.01)])
        teacher.enqueue([FakeReply("shipping")])
        result = await router.run("intent", "where is my parcel")
        assert result.local and teacher.history == []  # the caller's answer never waited for the teacher
        assert live.after(result, "where is my parcel", "t1")
        await live.drain()

    asyncio.run(scenario())
    assert stored == {"t1": ("shipping", "shadow:teacher")} and live.checked == 1
    assert spent_by_window(store, "contract", "intent", time.time())["total"] > 0  # the check's cost counts


def test_no_live_check_where_policy_forbids_the_top_rung() -> None:
    small, teacher, router = live_router(egress="local_only")
    stored: dict[str, tuple[str, str]] = {}
    live = LiveSampler(router, lambda tid, ref, source: stored.__setitem__(tid, (ref, source)))

    async def scenario() -> None:
        small.enqueue([FakeReply("billing", logprob=-0.01)])
        result = await router.run("intent", "x")
        live.after(result, "x", "t1")
        await live.drain()

    asyncio.run(scenario())
    assert stored == {} and teacher.history == []


def test_pending_checks_are_bounded_so_a_slow_top_rung_cannot_pile_work_up() -> None:
    small, teacher, router = live_router(teacher_latency=0.3)
    live = LiveSampler(router, lambda *_: None, max_pending=2)

    async def scenario() -> list[bool]:
        scheduled = []
        for i in range(5):
            small.enqueue([FakeReply("login", logprob=-0.01)])
            result = await router.run("intent", f"q{i}")
            scheduled.append(live.after(result, f"q{i}", f"t{i}"))
        assert live.pending == 2
        await live.drain()
        return scheduled

    assert asyncio.run(scenario()) == [True, True, False, False, False] and live.skipped == 3


def test_sampling_follows_the_rate_and_is_deterministic() -> None:
    ids = [new_trace_id() + str(i) for i in range(2000)]
    share = sum(sampled(i, 0.1) for i in ids) / len(ids)
    assert 0.07 < share < 0.13 and [sampled(i, 0.1) for i in ids[:50]] == [sampled(i, 0.1) for i in ids[:50]]
    assert not any(sampled(i, 0.0) for i in ids)


def test_a_promoted_version_with_low_live_agreement_is_rolled_back_and_retrained(settings: Settings) -> None:
    seed(settings, intent_items(240))
    assert run_distill(settings, "intent", DistillOptions(base=False))["promoted"]
    store = SQLiteTraceStore(settings.trace_db)
    now = time.time()
    for i in range(40):  # live traffic answered by v1 whose shadow checks disagree
        t = Trace(id=new_trace_id(), created_at=now + i, endpoint="test", model="intent", contract="intent",
                  input=f"live {i}", output="billing", backend_model="intent-specialist@v1", rung=0)
        store.append(t)
        store.add_label(t.id, "login", "shadow:teacher", replace=False)
    store.close()
    retrained: list[str] = []
    result = watch_once(settings, WatchOptions(min_new=1000, min_live_samples=30),
                        retrain=lambda s, name: retrained.append(name) or {"ok": True})
    entry = result["intent"]
    assert entry["live"]["rolled_back"] and entry["live"]["references"] == 40 and entry["live"]["agreement"] == 0.0
    assert SpecialistRegistry(settings.home).state("intent")["promoted"] is None
    assert "live agreement 0.000" in SpecialistRegistry(settings.home).state("intent")["history"][-1]["reason"]
    assert retrained == ["intent"] and "rolled back" in entry["retrain"][0]


def test_watch_retrains_when_enough_new_references_arrive(settings: Settings) -> None:
    seed(settings, intent_items(240))
    assert run_distill(settings, "intent", DistillOptions(base=False))["promoted"]
    calls: list[str] = []
    quiet = watch_once(settings, WatchOptions(min_new=50), retrain=lambda s, n: calls.append(n) or {})
    assert quiet["intent"]["new_references"] == 0 and quiet["intent"]["retrain"] is None and calls == []
    store = SQLiteTraceStore(settings.trace_db)
    from tests.distill.conftest import routed_trace

    store.append_many([routed_trace(text, label, created_at=time.time() + i)
                       for i, (text, label) in enumerate(intent_items(60, seed=5))])
    store.close()
    busy = watch_once(settings, WatchOptions(min_new=50), retrain=lambda s, n: calls.append(n) or {})
    assert busy["intent"]["new_references"] == 60 and calls == ["intent"]


def test_watch_retrains_in_a_low_priority_child_process(settings: Settings) -> None:
    seed(settings, intent_items(240))
    result = watch_once(settings, WatchOptions(min_new=100))  # the real child: smallfleet distill run --json
    assert result["intent"]["result"]["version"] == "v1" and result["intent"]["result"]["promoted"] is True


def test_watch_retrains_when_the_local_share_drifts_down(settings: Settings) -> None:
    seed(settings, intent_items(240))
    assert run_distill(settings, "intent", DistillOptions(base=False))["promoted"]
    store = SQLiteTraceStore(settings.trace_db)
    now = time.time()
    escalated = [Trace(id=new_trace_id(), created_at=now + i, endpoint="test", model="intent", contract="intent",
                       input=f"new kind of request {i}", output="login", rung=2, backend_model="teacher",
                       attempts=[{"rung": 0, "model": "intent-specialist@v1", "status": "rejected",
                                  "location": "local"},
                                 {"rung": 2, "model": "teacher", "status": "accepted", "location": "remote"}])
                 for i in range(30)]
    store.append_many(escalated)
    store.close()
    calls: list[str] = []
    result = watch_once(settings, WatchOptions(min_new=1000, window=40), retrain=lambda s, n: calls.append(n) or {})
    assert calls == ["intent"] and "drifted below" in result["intent"]["retrain"][0]
    assert result["intent"]["recent_local_share"] == 0.0 and result["intent"]["recent_requests"] == 30


def test_live_quality_looks_at_the_newest_references_so_a_long_good_history_cannot_hide_a_drift(
        tmp_path: Path) -> None:
    from smallfleet.distill.monitor import live_quality

    store = SQLiteTraceStore(tmp_path / "traces.db")
    for i in range(1040):  # 1,000 agreeing answers, then 40 that the shadow checks disagree with
        t = Trace(id=new_trace_id(), created_at=1000.0 + i, endpoint="test", model="intent", contract="intent",
                  input=f"live {i}", output="billing", backend_model="intent-specialist@v1", rung=0)
        store.append(t)
        store.add_label(t.id, "billing" if i < 1000 else "login", "shadow:teacher", replace=False)
    person = Trace(id=new_trace_id(), created_at=5000.0, endpoint="test", model="intent", contract="intent",
                   input="labelled", output="billing", backend_model="intent-specialist@v1", rung=0)
    store.append(person)
    store.add_label(person.id, "login", "person", replace=False)
    whole = live_quality(store, "intent", "intent-specialist@v1", window=10_000)
    recent = live_quality(store, "intent", "intent-specialist@v1", window=200)
    shadow_only = live_quality(store, "intent", "intent-specialist@v1", window=200, sources=("shadow",))
    store.close()
    assert whole.references == 1041 and whole.upper > 0.95  # over all history the drift is invisible
    assert recent.references == 200 and recent.agreement == 159 / 200 and recent.upper < 0.95
    assert shadow_only.references == 200 and shadow_only.agreement == 160 / 200  # the person's label left out
