"""Shipped weights as data: a safetensors file with its JSON manifest beside it (`name.safetensors` +
`name.json`), read in one place so a missing or damaged file is the same clear problem for every model that ships
one (the seed adapter, the SmolLM2 judge)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ascl_data.errors import Problem


def read_weights(path: Path, remake: str) -> tuple[dict[str, Any], dict[str, Any], list[Problem]]:
    """(tensors, manifest, problems) of `path` and `path.with_suffix(".json")`; `remake` says how to get the files
    back, in the message of a missing or unreadable one. The caller checks what its manifest and tensors must hold."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    problems: list[Problem] = []
    tensors: dict[str, Any] = {}
    manifest: dict[str, Any] = {}
    try:
        tensors = load_file(path)
    except FileNotFoundError:
        problems.append(Problem(str(path), "", f"missing; {remake}"))
    except (SafetensorError, OSError) as exc:
        problems.append(Problem(str(path), "", f"not a readable safetensors file ({exc}); {remake}"))
    manifest_path = path.with_suffix(".json")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError(f"a JSON {type(manifest).__name__}")
    except FileNotFoundError:
        problems.append(Problem(str(manifest_path), "", f"missing; {remake}"))
    except ValueError as exc:
        manifest = {}
        problems.append(Problem(str(manifest_path), "", f"not a JSON object ({exc})"))
    return tensors, manifest, problems
