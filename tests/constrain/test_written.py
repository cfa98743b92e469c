"""Training targets are written exactly as the constrained model writes them: the grammar accepts them token by token."""

from __future__ import annotations

import json

import pytest

from smallfleet.backends.embedded import embedded_gguf_path
from smallfleet.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from smallfleet.constrain.outcome import canonical
from smallfleet.constrain.spec import JsonSchemaConstraint, ToolsConstraint
from smallfleet.constrain.written import in_schema_order, written_answer
from smallfleet.errors import BackendError
from smallfleet.workload import documents
from smallfleet.workload.agent_tools import AGENT_TOOLS

pytestmark = pytest.mark.model

TOOLS = ToolsConstraint(tools=tuple(AGENT_TOOLS), mode="auto")
CALLS = canonical(json.dumps([{"name": "convert_currency", "arguments": {"to_currency": "EUR", "amount": 100,
                                                                         "from_currency": "USD"}}]))


def _accepts(backend: LlamaCppBackend, constraint: object, text: str, special: bool) -> bool:
    masker = backend._masker(constraint)  # type: ignore[arg-type]
    assert masker is not None
    try:
        for token in backend.llama.tokenize(text.encode(), add_bos=False, special=special):
            masker.consume(token)
    except BackendError:
        return False
    return masker.accepting


@pytest.fixture(scope="module")
def smollm() -> LlamaCppBackend:
    return LlamaCppBackend("smollm2-135m", LlamaCppOptions(path=embedded_gguf_path(), n_ctx=512))


def test_objects_are_written_in_schema_order_not_sorted() -> None:
    schema = {"type": "object", "properties": {"b": {"type": "object", "properties": {"y": {}, "x": {}}}, "a": {}}}
    assert list(in_schema_order({"a": 1, "b": {"x": 1, "y": 2}, "z": 0}, schema)) == ["b", "a", "z"]
    assert list(in_schema_order({"a": 1, "b": {"x": 1, "y": 2}}, schema)["b"]) == ["y", "x"]


def test_a_json_target_is_what_the_grammar_accepts(smollm: LlamaCppBackend) -> None:
    constraint = JsonSchemaConstraint(schema=documents.HEADER_SCHEMA)
    reference = canonical(json.dumps({"vendor": "Globex Ltd", "currency": "EUR", "invoice_number": "INV-12345"}))
    written = written_answer(constraint, reference, smollm.tool_format)
    assert written == '{"invoice_number": "INV-12345", "vendor": "Globex Ltd", "currency": "EUR"}'
    assert _accepts(smollm, constraint, written, special=False)
    assert not _accepts(smollm, constraint, reference, special=False)  # sorted keys: not what the grammar writes


def test_a_tool_call_target_uses_the_marker_format_on_smollm(smollm: LlamaCppBackend) -> None:
    written = written_answer(TOOLS, CALLS, smollm.tool_format)
    assert written.startswith("<tool_call>[") and _accepts(smollm, TOOLS, written, special=False)
    assert smollm.tool_format.parse(written) == [("convert_currency", {"amount": 100, "from_currency": "USD",
                                                                        "to_currency": "EUR"})]
    assert written_answer(TOOLS, "Paris is the capital of France.", smollm.tool_format) == \
        "Paris is the capital of France."  # a text answer (no call needed) is trained as it is


def test_a_tool_call_target_uses_hermes_blocks_on_qwen(qwen05: LlamaCppBackend) -> None:
    written = written_answer(TOOLS, CALLS, qwen05.tool_format)
    assert written.startswith("<tool_call>\n{\"name\": \"convert_currency\"") and written.endswith("</tool_call>")
    tokens = qwen05.llama.tokenize(written.encode(), add_bos=False, special=True)
    assert tokens[0] == qwen05.llama.tokenize(b"<tool_call>", add_bos=False, special=True)[0]  # one special token
    assert _accepts(qwen05, TOOLS, written, special=True)
    two = canonical(json.dumps([{"name": "get_weather", "arguments": {"city": "Oslo"}},
                                {"name": "get_time", "arguments": {"timezone": "Europe/Oslo"}}]))
    assert _accepts(qwen05, TOOLS, written_answer(TOOLS, two, qwen05.tool_format), special=True)
