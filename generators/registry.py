"""Finding generators: by name through the `ascl_data.generators` entry-point group (the built-ins are declared
there too, in pyproject.toml), or any `pkg.module:Class`, so a user adds a generator without editing the package."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from ascl_data.errors import InputError, Problem
from ascl_data.generators.base import Generator

GROUP = "ascl_data.generators"


def available_generators() -> dict[str, str]:
    """Name -> `module:Class` for every installed generator (the first package to declare a name wins)."""
    found: dict[str, str] = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def _load(target: str, name: str) -> type[Generator]:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise InputError("generator", [Problem(name, "", f"{target!r} is not of the form 'pkg.module:Class'")])
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InputError("generator", [Problem(name, "", f"cannot import {target!r}: {exc}")]) from None
    if not (isinstance(obj, type) and issubclass(obj, Generator)):
        raise InputError("generator", [Problem(name, "", f"{target!r} is not a subclass of ascl_data.generators.Generator")])
    return obj


def get_generator(name_or_path: str) -> type[Generator]:
    """A generator class by registered name, or by `pkg.module:Class`."""
    known = available_generators()
    if name_or_path in known:
        return _load(known[name_or_path], name_or_path)
    if ":" in name_or_path:
        return _load(name_or_path, name_or_path)
    raise InputError(
        "generator",
        [Problem(name_or_path, "", f"unknown generator; registered: {sorted(known)}, or give 'pkg.module:Class'")],
    )
