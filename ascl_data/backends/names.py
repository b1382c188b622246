"""The backends by name: a leaf, so that configs (the recipe's teacher, the judge's backend, eval's `backend`) can
check a name without importing any backend. `BACKENDS` is the one list of backend names; everything that takes a
backend's name checks it against this list (`BackendName`, `backend_union`)."""

from __future__ import annotations

import difflib
from typing import Annotated

from pydantic import AfterValidator

BACKENDS: dict[str, str] = {
    "transformers": "ascl_data.backends.transformers_backend:TransformersBackend",
    "openai": "ascl_data.backends.openai_backend:OpenAIBackend",
    "vllm": "ascl_data.backends.vllm_backend:VLLMBackend",
}


def known_backends() -> str:
    """The backend names as a message lists them: `'transformers', 'openai' or 'vllm'`."""
    names = [repr(n) for n in BACKENDS]
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)


def backend_name(name: str) -> str:
    """A backend's name, checked against `BACKENDS`: an unknown one is an error listing the known names, with a close
    match where there is one."""
    if name not in BACKENDS:
        close = difflib.get_close_matches(name, list(BACKENDS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown backend {name!r}; it is one of {known_backends()}{hint}")
    return name


BackendName = Annotated[str, AfterValidator(backend_name)]  # one of BACKENDS' names

__all__ = ["BACKENDS", "BackendName", "backend_name", "known_backends"]
