"""Admission control: a bounded number of running generations and a bounded, timed wait queue.

The embedded model serves one generation at a time on a small CPU; letting requests pile up
without bound would turn overload into timeouts for everyone. Excess requests wait up to
`timeout_s` for a slot among at most `max_queue` waiters; beyond either limit they get
`Overloaded` (HTTP 429 with Retry-After) at once, and nothing already running is disturbed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from smallfleet.errors import Overloaded

log = logging.getLogger("smallfleet.admission")


@dataclass
class Admission:
    """Slots for one backend. Waiters are served first come, first served: a freed slot is handed to the oldest
    waiter (one wake-up), never announced to all of them (under overload, waking every waiter on every release
    costs as much CPU as the waiters are many)."""

    name: str
    concurrency: int
    max_queue: int
    timeout_s: float
    _running: int = 0
    _waiters: deque[asyncio.Future[None]] = field(default_factory=deque)
    on_change: Callable[[str, int, int], None] | None = None  # (name, running, waiting) after each change

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self.name, self._running, len(self._waiters))
            except Exception:  # noqa: BLE001 - a metrics failure never holds a slot or fails a request
                log.exception("admission observer failed")

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _retry_after(self) -> float:
        # A rough, honest hint: queue depth relative to slots, at least one second.
        return float(max(1, (len(self._waiters) + self._running) // max(1, self.concurrency)))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one generation slot for the duration of the block."""
        while self._waiters and self._waiters[0].done():  # (one that gave up, not yet out of the queue)
            self._waiters.popleft()
        if self._running < self.concurrency and not self._waiters:  # (nobody passes those already waiting)
            self._running += 1
            self._changed()
        else:
            await self._wait()
        try:
            yield
        finally:
            self._release()

    async def _wait(self) -> None:
        """Queue for a slot: returns holding one (handed over by `_release`, `_running` already counts it)."""
        if len(self._waiters) >= self.max_queue:
            raise Overloaded(
                f"model {self.name!r} is busy: {self._running} running and {len(self._waiters)} waiting "
                f"(queue limit {self.max_queue}); retry later",
                retry_after=self._retry_after(),
            )
        handed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(handed)
        self._changed()
        try:
            await asyncio.wait_for(handed, self.timeout_s)
        except BaseException as exc:  # timed out or cancelled: a slot handed over meanwhile goes to the next
            if handed.done() and not handed.cancelled():
                self._release()
            if isinstance(exc, TimeoutError):
                raise Overloaded(
                    f"model {self.name!r} is busy: no slot freed within {self.timeout_s:g}s; retry later",
                    retry_after=self._retry_after(),
                ) from None
            raise
        finally:
            if handed in self._waiters:
                self._waiters.remove(handed)
            self._changed()

    def _release(self) -> None:
        """Give the slot to the oldest waiter still waiting, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._changed()
                return
        self._running -= 1
        self._changed()
