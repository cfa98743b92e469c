"""Live quality: a sampled share of locally accepted answers is also asked of the top rung, in the background.

A contract's `shadow_rate` says which share (chosen by a hash of the trace id, so reruns pick the same
requests). The top rung's valid answer is stored as the trace's reference with source
`shadow:<model>`; it never replaces a label a person gave. These references measure each local
model's live agreement (`distill.monitor`) and feed the next dataset. The check runs after the
answer has gone back to the caller, never delays it, and goes through the same policy as any request
(egress, budget: its cost counts, breaker). At most `max_pending` checks run at once; beyond that a
sampled request is skipped and counted, so a slow top rung can never make pending work pile up.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from smallfleet.route.router import RouteResult, Router

log = logging.getLogger("smallfleet.live")

StoreReference = Callable[[str, str, str], None]  # (trace_id, reference, source)


def sampled(trace_id: str, rate: float) -> bool:
    """Deterministic sampling by trace id: the same trace is always in or out."""
    return rate > 0 and int(hashlib.sha256(("shadow:" + trace_id).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < rate


@dataclass
class LiveSampler:
    router: Router
    store_reference: StoreReference
    max_pending: int = 8
    skipped: int = 0
    checked: int = 0
    _pending: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def after(self, result: RouteResult, text: str, trace_id: str, tenant: str | None = None) -> bool:
        """Schedule a background check of a locally accepted answer if the contract samples it; True if scheduled.
        It runs under the caller's egress scope (the task inherits it), so the guard charges it to the caller's
        tenant, and refuses it (nothing is sent) when that tenant's budget or the contract's cannot pay for it."""
        contract = self.router.contracts.get(result.contract)
        if (contract is None or result.outcome is None or not result.local or len(contract.spec.ladder) < 2
                or result.cached in ("exact", "semantic")):  # an answer checked when it was first given
            return False
        if not sampled(trace_id, contract.spec.shadow_rate):
            return False
        if len(self._pending) >= self.max_pending:
            self.skipped += 1
            return False
        task = asyncio.create_task(self._check(result.contract, text, trace_id, tenant))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return True

    async def _check(self, contract: str, text: str, trace_id: str, tenant: str | None) -> None:
        try:
            reference, source = await self.router.ask_top(contract, text)
            if reference is not None:
                await asyncio.to_thread(self.store_reference, trace_id, reference, f"shadow:{source}")
                self.checked += 1
        except Exception:  # a failed check loses one sample, never the gateway
            log.exception("live check of trace %s failed", trace_id)

    async def drain(self) -> None:
        """Wait for the checks in flight (shutdown, tests)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
