"""Circuit breaker per backend: after N consecutive failures, stop calling it for a cool-down.

Closed -> (N failures) -> open (calls skipped) -> (cool-down elapsed) -> half-open (one trial call)
-> closed on success, open again on failure. Time comes from an injectable clock so tests are exact.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class CircuitBreaker:
    failure_threshold: int = 3
    cooldown_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _failures: int = 0
    _opened_at: float | None = None
    _trial_running: bool = field(default=False)

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self._opened_at >= self.cooldown_s else "open"

    def allow(self) -> bool:
        """May we call the backend now? In half-open state only one trial at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def success(self) -> None:
        self._failures, self._opened_at, self._trial_running = 0, None, False

    def failure(self) -> None:
        self._trial_running = False
        self._failures += 1
        if self._failures >= self.failure_threshold or self._opened_at is not None:
            self._opened_at = self.clock()
