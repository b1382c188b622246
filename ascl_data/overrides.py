"""`key=value` settings given on the command line (`--backend-setting`, `--judge-setting`, `--local`, `--column`):
one parser for all of them, light enough for any command to use."""

from __future__ import annotations

from typing import Any

import yaml

from ascl_data.errors import InputError, Problem


def parse_overrides(items: list[str], option: str) -> dict[str, Any]:
    """`["a.b=1", "c=x"]` -> `{"a": {"b": 1}, "c": "x"}`; values are YAML, so numbers and booleans keep their type.
    An item without `=`, a key or a value is an error naming the option and the item."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise InputError(option, [Problem(option, item, "expected key=value (dotted keys for nesting)")])
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise InputError(option, [Problem(option, item, f"the value is not valid YAML: {exc}")]) from None
    return out
