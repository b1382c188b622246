"""Teacher backends by name. Heavy modules (torch, vllm, openai) are imported only when their backend is made."""

from __future__ import annotations

import importlib
from typing import Any

from ascl_data.backends.base import Backend, Completion, SamplingParams
from ascl_data.backends.names import BACKENDS


def backend_class(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {sorted(BACKENDS)}")
    module_name, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def make_backend(name: str, **settings: Any) -> Backend:
    """`make_backend("transformers", model="embedded")`, `make_backend("openai", base_url=..., model=...)`."""
    return backend_class(name)(**settings)


__all__ = ["BACKENDS", "Backend", "Completion", "SamplingParams", "backend_class", "make_backend"]
