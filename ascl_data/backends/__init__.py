"""Teacher backends by name. Heavy modules (torch, vllm, openai) are imported only when their backend is made."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ascl_data.backends.base import Backend, Completion, SamplingParams
from ascl_data.errors import InputError, Problem

if TYPE_CHECKING:
    from ascl_data.cache import CachedBackend
    from ascl_data.recipe import TeacherConfig

BACKENDS: dict[str, str] = {
    "transformers": "ascl_data.backends.transformers_backend:TransformersBackend",
    "openai": "ascl_data.backends.openai_backend:OpenAIBackend",
    "vllm": "ascl_data.backends.vllm_backend:VLLMBackend",
}


def backend_class(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {sorted(BACKENDS)}")
    module_name, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def make_backend(name: str, **settings: Any) -> Backend:
    """`make_backend("transformers", model="embedded")`, `make_backend("openai", base_url=..., model=...)`."""
    return backend_class(name)(**settings)


def make_teacher(config: TeacherConfig, cache_file: Path, backend: Backend | None = None) -> CachedBackend:
    """The recipe's teacher (or `backend`, given from Python) behind the persistent request cache. The key's
    environment variable goes to backends that take one; in-process engines need none."""
    from ascl_data.cache import CachedBackend, RequestCache

    if backend is None:
        cls = backend_class(config.backend)
        settings = dict(config.settings)
        if config.model is not None:
            settings["model"] = config.model
        if config.api_key_env is not None and cls.uses_api_key:
            settings["api_key_env"] = config.api_key_env
        try:
            backend = cls(**settings)
        except TypeError as exc:
            raise InputError("recipe teacher", [Problem("teacher", "settings", str(exc))]) from None
    return CachedBackend(backend, RequestCache(cache_file))


__all__ = ["BACKENDS", "Backend", "Completion", "SamplingParams", "backend_class", "make_backend", "make_teacher"]
