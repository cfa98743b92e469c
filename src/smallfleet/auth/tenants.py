"""Tenants at the door: who is calling (API key), what they may call, how often, and within what budget.

`Tenancy.authenticate` runs before a request is read: with keys configured (any key ever created, or
tenants in the fleet file) a request without a valid `Authorization: Bearer` key gets 401, and one over
its tenant's request rate gets 429 with Retry-After. `Tenancy.authorize` runs once the body names a
model: 403 for a model or contract the tenant may not call, 429 `insufficient_quota` once its budget is
spent. The tenant's egress policy is entered by the API as an egress scope, so the guard applies it to
every remote call the request makes.

Limits are per gateway process (`serve --workers N` gives each worker its own rate bucket); the budget is
read from the trace store, which all workers share. A budget can be overshot by the requests already in
flight when it runs out (each is checked when it starts).
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

    def __init__(self, keys: KeyStore | None, tenants: list[TenantConfig], spent: Callable[[str], float],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._keys = keys
        self._tenants = {t.name: t for t in tenants}
        self._spent = spent
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    @property
    def required(self) -> bool:
        """Whether every request needs a key: tenants are configured or a key was ever created."""
        return bool(self._tenants) or (self._keys is not None and self._keys.configured())

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
        """Refuse (403) a model or contract the caller's tenant may not use, and (429) any request once its budget
        is spent. `model_id` is the fleet id `model` resolves to (aliases like `default`)."""
        if caller is None:
            return
        tenant = caller.tenant
        allowed = tenant.contracts if contract else tenant.models
        if allowed is not None and model not in allowed and (model_id is None or model_id not in allowed):
            what = "contract" if contract else "model"
            raise Forbidden(f"tenant {tenant.name!r} may not use the {what} {model!r}", param="model")
        if not self.may_spend(tenant.name):
            raise QuotaExceeded(f"tenant {tenant.name!r} has spent its budget (${self._spent(tenant.name):.4f} of "
                                f"${tenant.budget_usd:.4f})")

    def may_spend(self, tenant: str) -> bool:
        """Whether `tenant` has budget left (background work on its behalf checks this too)."""
        budget = self._tenants[tenant].budget_usd if tenant in self._tenants else None
        return budget is None or self._spent(tenant) < budget

    def allowed(self, caller: Caller | None, model: str, *, contract: bool) -> bool:
        """Whether `model` shows in the caller's /v1/models."""
        if caller is None:
            return True
        allowed = caller.tenant.contracts if contract else caller.tenant.models
        return allowed is None or model in allowed

    def close(self) -> None:
        if self._keys is not None:
            self._keys.close()
