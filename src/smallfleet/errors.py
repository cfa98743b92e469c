"""One small exception hierarchy for the whole project.

Every error a caller can cause or a backend can raise is a `SmallfleetError` carrying the
HTTP status, OpenAI error `type` and `code` it maps to. The mapping to an HTTP body happens
at the edge only (`smallfleet.api.errors`); the CLI prints `message` on one line.
"""

from __future__ import annotations


class SmallfleetError(Exception):
    """Base class: an error with a clear one-line message and its OpenAI-shaped classification."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None
    unbilled: bool = False  # set where the error proves the upstream processed nothing (budgets refund the hold)

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class ConfigError(SmallfleetError):
    """The fleet file or an environment variable is wrong; names the file, key and expectation."""

    status = 500
    type = "config_error"
    code = "invalid_config"


class InvalidRequest(SmallfleetError):
    """The caller sent something we will not run (malformed body, out-of-range parameter)."""

    status = 400
    type = "invalid_request_error"


class ModelNotFound(InvalidRequest):
    """The `model` named in the request is not in the fleet."""

    code = "model_not_found"


class NotFound(InvalidRequest):
    """A resource named in the request (a trace id) does not exist."""

    status = 404
    type = "not_found_error"
    code = "not_found"


class Conflict(SmallfleetError):
    """The request asks for something the current state does not allow (roll back with nothing promoted)."""

    status = 409
    type = "invalid_request_error"
    code = "conflict"


class ContextLengthExceeded(InvalidRequest):
    """Prompt (plus requested completion) does not fit the model's context window."""

    code = "context_length_exceeded"


class Overloaded(SmallfleetError):
    """The model's queue is full or the wait for a slot ran out; retry later."""

    status = 429
    type = "rate_limit_error"
    code = "overloaded"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BackendError(SmallfleetError):
    """A backend failed to produce an answer (engine error, bad upstream response)."""

    status = 502
    type = "backend_error"
    code = "backend_error"


class BackendUnavailable(BackendError):
    """The backend could not be reached (connection refused, DNS, TLS)."""

    status = 503
    code = "backend_unavailable"


class BackendTimeout(BackendError):
    """The backend did not answer within its configured timeout."""

    status = 504
    code = "backend_timeout"


class KnowledgeBaseUnavailable(SmallfleetError):
    """A grounded contract's knowledge base has no index yet (or none is configured): nothing to answer from."""

    status = 503
    type = "service_unavailable"
    code = "knowledge_base_unavailable"
