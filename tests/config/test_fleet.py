"""The fleet file: valid files load; every mistake names the file, the key and the expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from smallfleet.config.fleet import DEFAULT_MODEL_ID, LlamaCppModel, OpenAIModel, load_fleet
from smallfleet.config.settings import Settings
from smallfleet.errors import ConfigError
from smallfleet.fleet import Fleet


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return path


def test_no_file_means_the_embedded_default() -> None:
    config = load_fleet(None)
    assert config.default_id == DEFAULT_MODEL_ID
    assert isinstance(config.models[0], LlamaCppModel) and config.models[0].path is None


def test_a_full_file_loads(tmp_path: Path) -> None:
    config = load_fleet(write(tmp_path, """
default_model: big
models:
  - id: small
    kind: llamacpp
    n_ctx: 2048
  - id: big
    kind: openai
    base_url: http://127.0.0.1:8000/v1
    model: qwen
    api_key_env: BIG_KEY
    price_per_1k_output: 0.6
"""))
    assert config.default_id == "big"
    big = config.models[1]
    assert isinstance(big, OpenAIModel) and big.api_key_env == "BIG_KEY" and big.price_per_1k_output == 0.6


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models:\n  - id: a\n    kind: llamacpp\n    n_ctxx: 10\n", "models[0].n_ctxx: Extra inputs are not permitted"),
        ("models:\n  - id: a\n    kind: openai\n    model: m\n", "models[0].base_url: Field required"),
        ("models:\n  - id: a\n    kind: llamacpp\n    n_ctx: lots\n", "models[0].n_ctx: Input should be a valid integer"),
        ("models:\n  - id: a\n    kind: teleport\n", "models[0]: Input tag 'teleport' found using 'kind' does not match"),
        ("models:\n  - {id: a, kind: fake}\n  - {id: a, kind: fake}\n", "model ids must be unique; repeated: a"),
        ("default_model: zz\nmodels:\n  - {id: a, kind: fake}\n", "default_model 'zz' is not one of the models"),
        ("models: []\n", "models: List should have at least 1 item"),
        ("- just a list\n", "expected a mapping with a 'models' list"),
        ("models: [unclosed\n", "not valid YAML"),
        ("modles:\n  - {id: a, kind: fake}\n", "modles: Extra inputs are not permitted"),
        ("models: [{id: a, kind: fake}]\ntenants: [{name: t, models: [b]}]\n",
         "tenants[0].models: 'b' is not one of the models: a"),
        ("models: [{id: a, kind: fake}]\ntenants: [{name: t, contracts: [c]}]\n",
         "tenants[0].contracts: 'c' is not one of the contracts: (none)"),
        ("models: [{id: a, kind: fake}]\ntenants: [{name: t}, {name: t}]\n", "tenant names must be unique; repeated: t"),
        ("models: [{id: a, kind: fake}]\ntenants: [{name: t, egress: open}]\n", "tenants[0].egress: Input should be"),
        ("models: [{id: a, kind: fake}]\ntenants: [{name: t, requests_per_minute: 0}]\n",
         "tenants[0].requests_per_minute: Input should be greater than 0"),
    ],
)
def test_mistakes_name_the_file_key_and_expectation(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_fleet(path)
    assert str(path) in err.value.message
    assert expected in err.value.message


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read fleet file"):
        load_fleet(tmp_path / "nope.yaml")


def test_api_key_variable_must_be_set(tmp_path: Path) -> None:
    config = load_fleet(write(tmp_path, "models:\n  - {id: r, kind: openai, base_url: 'http://x/v1', model: m, "
                                        "api_key_env: SF_TEST_UNSET_KEY}\n"))
    with pytest.raises(ConfigError, match="SF_TEST_UNSET_KEY.*not set"):
        Fleet.from_config(config, env={})


def test_settings_read_the_environment(tmp_path: Path) -> None:
    s = Settings.from_env({"SMALLFLEET_HOME": str(tmp_path), "SMALLFLEET_CONFIG": "f.yaml", "SMALLFLEET_PORT": "9"})
    assert s.trace_db == tmp_path / "traces.db" and s.config_path == Path("f.yaml") and s.port == 9
    with pytest.raises(ConfigError, match="SMALLFLEET_PORT"):
        Settings.from_env({"SMALLFLEET_PORT": "eighty"})
