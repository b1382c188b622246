"""Teacher backends by name, loaded on first use: configs can read the names (`names.py`) without importing any
backend, and heavy modules (torch, vllm, openai) load only when their backend is made (`registry.py`)."""

from __future__ import annotations

from ascl_data.lazy import lazy_exports

_EXPORTS = {
    "Backend": "ascl_data.backends.base", "Completion": "ascl_data.backends.base",
    "SamplingParams": "ascl_data.backends.base", "BACKENDS": "ascl_data.backends.names",
    "backend_class": "ascl_data.backends.registry", "make_backend": "ascl_data.backends.registry",
    "build_backend": "ascl_data.backends.registry",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
