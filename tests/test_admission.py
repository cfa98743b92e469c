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
