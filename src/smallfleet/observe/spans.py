"""OpenTelemetry spans of the gateway's requests, following the GenAI semantic conventions; off by default.

Spans are drawn from each committed trace, on the trace writer's thread (never on a request's path): one
span per request, with the request's real start and duration, and for a routed request one child span per
ladder attempt, timed from the attempt's own start (`Attempt.started_at`) and latency. Names and
attributes follow the conventions: `chat {model}` with `gen_ai.operation.name`, `gen_ai.provider.name`,
`gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.usage.input_tokens` / `output_tokens`,
`gen_ai.request.max_tokens` / `temperature` / `top_p`, `gen_ai.response.finish_reasons` and `error.type`.
A routed request's span is `route {contract}` and carries ours: `smallfleet.contract`, `smallfleet.rung`,
`smallfleet.escalation_reason`, `smallfleet.cost_usd`, with each attempt's status, reason, location and
cost. Every span carries `smallfleet.trace_id`, the id `smallfleet traces show` takes. Message contents
are never attributes (the conventions make them opt-in; the guard's policy applies to traces only).

Export is configured by the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `_HEADERS`, `_TIMEOUT`, ...; `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`) and switched on by setting an endpoint or `SMALLFLEET_OTEL=1`;
`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` keep it off. The provider is the gateway's own
(never the process-wide one), so tests hand in a provider with an in-memory exporter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smallfleet import __version__
from smallfleet.trace.record import Trace

PROVIDER = "smallfleet"  # gen_ai.provider.name: the gateway answers (local llama.cpp rungs or remote servers)


def enabled(env: Mapping[str, str]) -> bool:
    """Whether the environment asks for spans (see the module's docstring)."""
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true" or env.get("OTEL_TRACES_EXPORTER", "").lower() == "none":
        return False
    return bool(env.get("SMALLFLEET_OTEL") in ("1", "true") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def provider_from_env(env: Mapping[str, str]) -> Any | None:  # noqa: ANN401 - a TracerProvider
    """A tracer provider exporting over OTLP/HTTP as the environment says, or None when spans are off."""
    if not enabled(env):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        from smallfleet.errors import ConfigError

        raise ConfigError("OpenTelemetry export needs opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http "
                          "(pip install -e '.[otel]')") from None
    provider = TracerProvider(resource=Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "smallfleet")}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # reads OTEL_EXPORTER_OTLP_* itself
    return provider


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None and v != ""}


class TraceSpans:
    """Draws the spans of committed traces with one tracer provider."""

    def __init__(self, provider: Any) -> None:  # noqa: ANN401 - an opentelemetry TracerProvider
        self._tracer = provider.get_tracer("smallfleet", __version__)

    def observe(self, trace: Trace) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

        start = _ns(trace.created_at)
        end = start + _ns((trace.latency_ms or 0.0) / 1000)
        params = trace.params or {}
        common = {"smallfleet.trace_id": trace.id, "smallfleet.endpoint": trace.endpoint,
                  "smallfleet.tenant": trace.tenant, "smallfleet.run_id": trace.run_id,
                  "http.response.status_code": trace.http_status,
                  "gen_ai.request.max_tokens": params.get("max_tokens") or params.get("max_completion_tokens"),
                  "gen_ai.request.temperature": params.get("temperature"),
                  "gen_ai.request.top_p": params.get("top_p")}
        if trace.contract is None:
            name = f"chat {trace.model}"
            attributes = {**common, "gen_ai.operation.name": "chat", "gen_ai.provider.name": PROVIDER,
                          "gen_ai.request.model": trace.model, "gen_ai.response.model": trace.backend_model,
                          "gen_ai.usage.input_tokens": trace.prompt_tokens,
                          "gen_ai.usage.output_tokens": trace.completion_tokens,
                          "gen_ai.response.finish_reasons": [trace.finish_reason] if trace.finish_reason else None}
        else:
            name = f"route {trace.contract}"
            attributes = {**common, "smallfleet.contract": trace.contract, "smallfleet.rung": trace.rung,
                          "smallfleet.escalation_reason": trace.escalation_reason,
                          "smallfleet.cost_usd": trace.cost, "gen_ai.response.model": trace.backend_model}
        span = self._tracer.start_span(name, kind=SpanKind.SERVER, start_time=start, attributes=_clean(attributes))
        if trace.status != "ok":
            span.set_attribute("error.type", trace.error_type or "error")
            span.set_status(Status(StatusCode.ERROR, trace.error_type or "error"))
        parent = set_span_in_context(span)
        for attempt in trace.attempts:
            self._attempt(attempt, trace, parent, start)
        span.end(end_time=end)

    def _attempt(self, a: dict[str, Any], trace: Trace, parent: Any, fallback: int) -> None:  # noqa: ANN401
        from opentelemetry.trace import SpanKind, Status, StatusCode

        begun = _ns(a["started_at"]) if a.get("started_at") else fallback
        model = str(a.get("model") or "")
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": PROVIDER,
                      "gen_ai.request.model": model, "gen_ai.response.model": model,
                      "gen_ai.usage.input_tokens": a.get("prompt_tokens") or None,
                      "gen_ai.usage.output_tokens": a.get("completion_tokens") or None,
                      "smallfleet.trace_id": trace.id, "smallfleet.contract": trace.contract,
                      "smallfleet.rung": a.get("rung"), "smallfleet.attempt.status": a.get("status"),
                      "smallfleet.attempt.reason": a.get("reason"), "smallfleet.location": a.get("location"),
                      "smallfleet.cost_usd": a.get("cost") or None}
        kind = SpanKind.CLIENT if a.get("location") == "remote" else SpanKind.INTERNAL
        span = self._tracer.start_span(f"chat {model}", context=parent, kind=kind, start_time=begun,
                                       attributes=_clean(attributes))
        if a.get("status") == "failed":
            reason = str(a.get("reason") or "error")
            span.set_attribute("error.type", reason.split(":", 1)[-1].strip() or reason)
            span.set_status(Status(StatusCode.ERROR, reason))
        span.end(end_time=begun + _ns(float(a.get("latency_ms") or 0.0) / 1000))
