"""Tenants at the door: who is calling (API key), what they may call, how often, and within what budget.

`Tenancy.authenticate` runs before a request is read: with keys configured (any key ever created, or
tenants in the fleet file) a request without a valid `Authorization: Bearer` key gets 401, and one over
its tenant's request rate gets 429 with Retry-After. `Tenancy.authorize` runs once the body names a
model: 403 for a model or contract the tenant may not call, 429 `insufficient_quota` once its budget is
spent. The tenant's egress policy is entered by the API as an egress scope, so the guard applies it to
every remote call the request makes.

Rate limits are per gateway process (`serve --workers N` gives each worker its own rate bucket). Budgets
(lifetime, per UTC day, per UTC month) are the trace store's ledger, shared by every worker and replica: the
check here is the quick refusal of a tenant with nothing left; the exact one is the guard's reservation
before each priced call (`guard.budget`), so requests in flight can never overspend.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from smallfleet.auth.keys import KeyStore
from smallfleet.config.fleet import TenantConfig
from smallfleet.errors import Overloaded, SmallfleetError
from smallfleet.guard.budget import Ledger, Limits, exhausted


class Unauthenticated(SmallfleetError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class Forbidden(SmallfleetError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class RateLimited(Overloaded):
    code = "rate_limit_exceeded"


class QuotaExceeded(SmallfleetError):
    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"


@dataclass
class TokenBucket:
    """`per_minute` requests per minute, bursts up to one minute's worth (at least one request)."""

    per_minute: float
    clock: Callable[[], float] = time.monotonic
    _tokens: float = field(init=False)
    _at: float = field(init=False)

    def __post_init__(self) -> None:
        self._tokens, self._at = self._capacity, self.clock()

    @property
    def _capacity(self) -> float:
        return max(1.0, self.per_minute)

    def take(self) -> float:
        """0 if a request may go now (and it is counted), else the seconds until one may."""
        now = self.clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._at) * self.per_minute / 60)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) * 60 / self.per_minute


@dataclass(frozen=True)
class Caller:
    """An authenticated request's tenant and key id."""

    tenant: TenantConfig
    key_id: str

    @property
    def name(self) -> str:
        return self.tenant.name


class Tenancy:
    """The keys, the tenants of the fleet file, and their rate buckets."""

    def __init__(self, keys: KeyStore | None, tenants: list[TenantConfig], ledger: Ledger | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._keys = keys
        self._tenants = {t.name: t for t in tenants}
        self._limits = {t.name: Limits.of_config(t) for t in tenants}
        self._ledger = ledger
        self._wall = wall
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    @property
    def required(self) -> bool:
        """Whether every request needs a key: tenants are configured or a key was ever created."""
        return bool(self._tenants) or (self._keys is not None and self._keys.configured())

    def needs_round_trip(self, authorization: str | None) -> bool:
        """Whether `authenticate` would wait for a database server (keys in PostgreSQL, not remembered)."""
        if self._keys is None:
            return False
        presented = authorization.partition(" ")[2] if authorization else None
        return self._keys.needs_round_trip(presented)

    def authenticate(self, authorization: str | None) -> Caller | None:
        """The caller of a request with this `Authorization` header; None when keys are not required."""
        if not self.required:
            return None
        if not authorization:
            raise Unauthenticated("this gateway needs an API key: send it as 'Authorization: Bearer <key>'")
        scheme, _, presented = authorization.partition(" ")
        info = self._keys.verify(presented) if self._keys is not None and scheme.lower() == "bearer" else None
        if info is None:
            raise Unauthenticated("invalid API key: it is malformed, unknown or revoked")
        tenant = self._tenants.get(info.tenant)
        if tenant is None:
            raise Unauthenticated(f"API key {info.id} belongs to tenant {info.tenant!r}, which the fleet file no "
                                  "longer defines")
        self._rate(tenant)
        return Caller(tenant, info.id)

    def _rate(self, tenant: TenantConfig) -> None:
        if tenant.requests_per_minute is None:
            return
        with self._lock:
            bucket = self._buckets.get(tenant.name)
            if bucket is None:
                bucket = self._buckets[tenant.name] = TokenBucket(tenant.requests_per_minute, self._clock)
            wait = bucket.take()
        if wait:
            raise RateLimited(f"tenant {tenant.name!r} is over its rate limit of {tenant.requests_per_minute:g} "
                              "requests per minute; retry later", retry_after=math.ceil(wait))

    def authorize(self, caller: Caller | None, model: str, *, contract: bool, model_id: str | None = None) -> None:
        """Refuse (403) a model or contract the caller's tenant may not use (its budget: `check_budget`).
        `model_id` is the fleet id `model` resolves to (aliases like `default`)."""
        if caller is None:
            return
        tenant = caller.tenant
        allowed = tenant.contracts if contract else tenant.models
        if allowed is not None and model not in allowed and (model_id is None or model_id not in allowed):
            what = "contract" if contract else "model"
            raise Forbidden(f"tenant {tenant.name!r} may not use the {what} {model!r}", param="model")

    def limits(self, tenant: str) -> Limits | None:
        """A tenant's budgets (the guard's meter reads them at each priced call)."""
        return self._limits.get(tenant)

    def budgeted(self, caller: Caller | None) -> bool:
        """Whether the caller's tenant has a budget (then `check_budget` is worth a look at the ledger)."""
        return caller is not None and self._ledger is not None and self._limits[caller.tenant.name].any

    def check_budget(self, caller: Caller | None) -> None:
        """429 `insufficient_quota` once one of the caller's tenant's budgets is spent (a read of the ledger: call
        it off the event loop)."""
        if caller is None or self._ledger is None:
            return
        name = caller.tenant.name
        reached = exhausted(self._ledger, "tenant", name, self._limits.get(name), self._wall())
        if reached:
            raise QuotaExceeded(f"tenant {name!r} has spent its budget ({reached})")

    def allowed(self, caller: Caller | None, model: str, *, contract: bool) -> bool:
        """Whether `model` shows in the caller's /v1/models."""
        if caller is None:
            return True
        allowed = caller.tenant.contracts if contract else caller.tenant.models
        return allowed is None or model in allowed

    def close(self) -> None:
        if self._keys is not None:
            self._keys.close()
