"""Making a backend by name. Heavy modules (torch, vllm, openai) are imported only when their backend is made."""

from __future__ import annotations

import importlib
from typing import Any

from ascl_data.backends.base import Backend
from ascl_data.backends.configs import BackendModel
from ascl_data.backends.names import BACKENDS


def backend_class(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {sorted(BACKENDS)}")
    module_name, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def make_backend(name: str, *, role: str = "teacher", **settings: Any) -> Backend:
    """`make_backend("transformers", model="embedded")`, `make_backend("openai", base_url=..., model=...)`. `role`
    ("teacher", "judge", or "model" for the model `eval` evaluates) names the server in a refusal's message."""
    backend = backend_class(name)(**settings)
    backend.role = role  # type: ignore[attr-defined]
    return backend


def build_backend(section: BackendModel, *, role: str = "teacher") -> Backend:
    """The backend a config section names (the teacher, the model judge, the rater), built from its typed settings
    (`section.backend_settings()`: an InputError names the section's field when one is missing or bad)."""
    return make_backend(section.backend, role=role, **section.backend_settings().model_dump())
