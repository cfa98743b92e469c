"""Admission: bounded running generations, a bounded and timed wait queue, 429 beyond."""

from __future__ import annotations

import asyncio

import pytest

from smallfleet.admission import Admission
from smallfleet.errors import Overloaded


def test_excess_requests_wait_for_a_slot_then_run() -> None:
    async def run() -> list[int]:
        adm = Admission("m", concurrency=1, max_queue=5, timeout_s=5)
        order: list[int] = []

        async def job(i: int) -> None:
            async with adm.slot():
                order.append(i)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(job(i) for i in range(4)))
        assert adm.running == 0 and adm.waiting == 0
        return order

    assert sorted(asyncio.run(run())) == [0, 1, 2, 3]


def test_full_queue_is_refused_at_once_with_retry_after() -> None:
    async def run() -> None:
        adm = Admission("m", concurrency=1, max_queue=1, timeout_s=5)
        release = asyncio.Event()

        async def hold() -> None:
            async with adm.slot():
                await release.wait()

        holder = asyncio.create_task(hold())
        waiter = asyncio.create_task(hold())
        await asyncio.sleep(0.01)
        assert adm.running == 1 and adm.waiting == 1
        with pytest.raises(Overloaded) as err:
            async with adm.slot():
                pass
        assert err.value.retry_after >= 1 and "queue limit 1" in err.value.message
        release.set()
        await asyncio.gather(holder, waiter)

    asyncio.run(run())


def test_waiting_longer_than_the_timeout_is_refused() -> None:
    async def run() -> None:
        adm = Admission("m", concurrency=1, max_queue=4, timeout_s=0.05)
        release = asyncio.Event()

        async def hold() -> None:
            async with adm.slot():
                await release.wait()

        holder = asyncio.create_task(hold())
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded, match="no slot freed within 0.05s"):
            async with adm.slot():
                pass
        assert adm.waiting == 0
        release.set()
        await holder
        async with adm.slot():  # the slot is usable again afterwards
            assert adm.running == 1

    asyncio.run(run())


def test_a_freed_slot_goes_to_the_oldest_waiter_and_giving_up_passes_it_on() -> None:
    """First come, first served; a waiter cancelled (its client left) or timed out never keeps a slot, and one
    release wakes one waiter, not all of them."""
    async def run() -> tuple[list[int], int, int]:
        adm = Admission("m", concurrency=1, max_queue=10, timeout_s=5)
        order: list[int] = []
        release = asyncio.Event()

        async def job(i: int, hold: bool = False) -> None:
            async with adm.slot():
                order.append(i)
                if hold:
                    await release.wait()

        first = asyncio.create_task(job(0, hold=True))
        await asyncio.sleep(0)
        waiters = [asyncio.create_task(job(i)) for i in range(1, 6)]
        await asyncio.sleep(0.01)
        assert adm.running == 1 and adm.waiting == 5
        waiters[1].cancel()  # job 2 gives up while waiting
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(first, *waiters, return_exceptions=True)
        return order, adm.running, adm.waiting

    order, running, waiting = asyncio.run(run())
    assert order == [0, 1, 3, 4, 5] and running == 0 and waiting == 0


def test_a_slot_handed_to_a_waiter_that_was_cancelled_at_that_moment_is_passed_on() -> None:
    async def run() -> tuple[int, int]:
        adm = Admission("m", concurrency=1, max_queue=10, timeout_s=5)
        entered = asyncio.Event()

        async def hold() -> None:
            async with adm.slot():
                entered.set()
                await asyncio.sleep(0.01)

        holder = asyncio.create_task(hold())
        await entered.wait()
        late = asyncio.create_task(hold())
        await asyncio.sleep(0)
        next_one = asyncio.create_task(hold())
        await asyncio.sleep(0)
        await holder  # the slot is handed to `late` ...
        late.cancel()  # ... which is cancelled before it runs
        await asyncio.gather(late, next_one, return_exceptions=True)
        async with adm.slot():  # nothing leaked: the slot is free
            pass
        return adm.running, adm.waiting

    assert asyncio.run(run()) == (0, 0)
