"""Admission control: a bounded number of running generations and a bounded, timed wait queue.

The embedded model serves one generation at a time on a small CPU; letting requests pile up
without bound would turn overload into timeouts for everyone. Excess requests wait up to
`timeout_s` for a slot among at most `max_queue` waiters; beyond either limit they get
`Overloaded` (HTTP 429 with Retry-After) at once, and nothing already running is disturbed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from smallfleet.errors import Overloaded

log = logging.getLogger("smallfleet.admission")


@dataclass
class Admission:
    """Slots for one backend."""

    name: str
    concurrency: int
    max_queue: int
    timeout_s: float
    _running: int = 0
    _waiting: int = 0
    _free: asyncio.Condition = field(default_factory=asyncio.Condition)
    on_change: Callable[[str, int, int], None] | None = None  # (name, running, waiting) after each change

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self.name, self._running, self._waiting)
            except Exception:  # noqa: BLE001 - a metrics failure never holds a slot or fails a request
                log.exception("admission observer failed")

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return self._waiting

    def _retry_after(self) -> float:
        # A rough, honest hint: queue depth relative to slots, at least one second.
        return float(max(1, (self._waiting + self._running) // max(1, self.concurrency)))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one generation slot for the duration of the block."""
        async with self._free:
            if self._running >= self.concurrency:
                if self._waiting >= self.max_queue:
                    raise Overloaded(
                        f"model {self.name!r} is busy: {self._running} running and {self._waiting} waiting "
                        f"(queue limit {self.max_queue}); retry later",
                        retry_after=self._retry_after(),
                    )
                self._waiting += 1
                self._changed()
                try:
                    await asyncio.wait_for(
                        self._free.wait_for(lambda: self._running < self.concurrency), self.timeout_s
                    )
                except TimeoutError:
                    raise Overloaded(
                        f"model {self.name!r} is busy: no slot freed within {self.timeout_s:g}s; retry later",
                        retry_after=self._retry_after(),
                    ) from None
                finally:
                    self._waiting -= 1
                    self._changed()
            self._running += 1
            self._changed()
        try:
            yield
        finally:
            async with self._free:
                self._running -= 1
                self._changed()
                self._free.notify_all()
