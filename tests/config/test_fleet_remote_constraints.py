"""A contract's output must be enforceable by every remote rung's server: refused when the file loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from smallfleet.backends.openai_http import OpenAIHTTPBackend
from smallfleet.config.fleet import OpenAIModel, load_fleet
from smallfleet.errors import ConfigError
from smallfleet.fleet import Fleet
from smallfleet.guard.egress import GuardedRemote

OUTPUTS = {
    "choice": '{choice: [billing, tech]}',
    "regex": "{regex: '\\d{3}'}",
    "grammar": "{grammar: 'start: \"yes\" | \"no\"'}",
    "json_schema": "{json_schema: {type: object}}",
}


def fleet_file(tmp_path: Path, kind: str, api: str | None) -> Path:
    api_line = f", structured_outputs: {api}" if api else ""
    path = tmp_path / "fleet.yaml"
    path.write_text(f"""
models:
  - {{id: small, kind: fake}}
  - {{id: big, kind: openai, base_url: "http://127.0.0.1:9/v1", model: m{api_line}}}
contracts:
  - name: free-text
    ladder: [small, big]
  - name: extract-code
    output: {OUTPUTS[kind]}
    ladder: [small, big]
""")
    return path


@pytest.mark.parametrize(("api", "kind", "why"), [
    (None, "grammar", "only be enforced by a local model or a server with structured_outputs: vllm"),
    ("openai", "grammar", "only be enforced by a local model or a server with structured_outputs: vllm"),
    ("llama-server", "regex", "not regular expressions; use a local model or structured_outputs: vllm"),
    ("llama-server", "grammar", "not Lark-style grammars; use a local model or structured_outputs: vllm"),
])
def test_a_remote_rung_that_cannot_enforce_the_output_is_refused_at_load(tmp_path: Path, api: str | None,
                                                                         kind: str, why: str) -> None:
    path = fleet_file(tmp_path, kind, api)
    with pytest.raises(ConfigError) as err:
        load_fleet(path)
    message = err.value.message
    assert str(path) in message
    assert (f"contracts[1] 'extract-code': ladder[1] model 'big' ({api or 'openai'} API) "
            f"cannot enforce a {kind} constraint: ") in message
    assert why in message


@pytest.mark.parametrize(("api", "kind"), [
    (None, "choice"), (None, "regex"), (None, "json_schema"),
    ("vllm", "choice"), ("vllm", "regex"), ("vllm", "grammar"),
    ("vllm-legacy", "grammar"),
    ("llama-server", "choice"), ("llama-server", "json_schema"),
])
def test_outputs_the_server_can_take_load(tmp_path: Path, api: str | None, kind: str) -> None:
    config = load_fleet(fleet_file(tmp_path, kind, api))
    big = config.models[1]
    assert isinstance(big, OpenAIModel) and big.structured_outputs == (api or "openai")
    assert config.contracts[1].output.constraint().kind == kind


def test_a_grammar_contract_with_only_local_rungs_loads(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("""
models:
  - {id: small, kind: fake}
  - {id: big, kind: openai, base_url: "http://127.0.0.1:9/v1", model: m}
contracts:
  - {name: yes-no, output: {grammar: 'start: "yes" | "no"'}, ladder: [small]}
""")
    assert load_fleet(path).contracts[0].name == "yes-no"


def test_an_unknown_api_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("models:\n"
                    "  - {id: big, kind: openai, base_url: 'http://x/v1', model: m, structured_outputs: tgi}\n")
    with pytest.raises(ConfigError) as err:
        load_fleet(path)
    assert "models[0].structured_outputs" in err.value.message and "'vllm'" in err.value.message


def test_the_backend_is_told_its_server_api(tmp_path: Path) -> None:
    fleet = Fleet.from_config(load_fleet(fleet_file(tmp_path, "grammar", "vllm")), env={})
    backend = fleet.resolve("big").backend
    # remote models are only reachable through the guard, which passes the server's facts on
    assert isinstance(backend, GuardedRemote) and isinstance(backend._inner, OpenAIHTTPBackend)
    assert backend.structured_outputs == "vllm"
    default = Fleet.from_config(load_fleet(fleet_file(tmp_path, "choice", None)), env={}).resolve("big").backend
    assert default.structured_outputs == "openai"
