"""Rows -> PromptRecords: recipe filters on raw rows, then one source's columns (or adapter) mapped to the contract."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from ascl_data.recipe import Filter, SourceSpec
from ascl_data.schemas import KINDS, PromptMessage, PromptRecord, Provenance, is_blank
from ascl_data.sources.adapters import Adapter


class RowError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field



def passes(row: dict[str, Any], filters: list[Filter]) -> bool:
    for f in filters:
        value = row.get(f.column)
        text = "" if value is None else str(value)
        ok = {
            "eq": lambda: value == f.value,
            "ne": lambda: value != f.value,
            "in": lambda: value in f.value,
            "not_in": lambda: value not in f.value,
            "contains": lambda: str(f.value) in text,
            "not_contains": lambda: str(f.value) not in text,
            "regex": lambda: re.search(str(f.value), text) is not None,
            "min_length": lambda: len(text) >= f.value,
            "max_length": lambda: len(text) <= f.value,
        }[f.op]()
        if not ok:
            return False
    return True


def _messages(value: Any, column: str) -> list[PromptMessage]:
    if not isinstance(value, list) or not value:
        raise RowError(column, "expected a non-empty list of {role, content} messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise RowError(f"{column}[{i}]", "expected a {role, content} object")
        try:
            out.append(PromptMessage(role=m.get("role"), content=m.get("content")))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            raise RowError(f"{column}[{i}].{'.'.join(map(str, err['loc']))}", err["msg"]) from None
    if out[-1].role != "user":
        raise RowError(column, "the last message must be a user turn")
    return out


def normalise(spec: SourceSpec, adapter: Adapter | None, row: dict[str, Any], index: int,
              provenance: Provenance) -> PromptRecord:
    """One raw row -> PromptRecord, or RowError naming the column that is wrong."""
    cols = spec.columns
    base: dict[str, Any] = {}
    if adapter is not None:
        missing = [c for c in adapter.required if c not in row]
        if missing:
            raise RowError(missing[0], f"column missing (the {adapter.name!r} adapter needs {list(adapter.required)})")
        converted = adapter.convert(row)
        if converted is None:
            raise RowError("", f"the {adapter.name!r} adapter found no usable prompt in this row")
        base = dict(converted)
    # explicit column mappings override the adapter
    if cols.messages:
        if cols.messages not in row:
            raise RowError(cols.messages, "column missing")
        messages = _messages(row[cols.messages], cols.messages)
    else:
        prompt_col = cols.prompt
        prompt = row.get(prompt_col) if prompt_col else base.get("prompt")
        if prompt_col and prompt_col not in row:
            raise RowError(prompt_col, "column missing")
        if not isinstance(prompt, str):
            raise RowError(prompt_col or "prompt", f"expected text, got {type(prompt).__name__}")
        if is_blank(prompt):
            raise RowError(prompt_col or "prompt", "empty prompt")
        messages = [PromptMessage(role="user", content=prompt)]
        if cols.system and row.get(cols.system):
            messages.insert(0, PromptMessage(role="system", content=str(row[cols.system])))
    kind = spec.kind
    if kind is None and cols.kind:
        if cols.kind not in row:
            raise RowError(cols.kind, "column missing")
        raw = row[cols.kind]
        kind = spec.kind_map.get(str(raw), raw)
        if kind not in KINDS:
            hint = f" (map it with kind_map)" if spec.kind_map or raw not in KINDS else ""
            raise RowError(cols.kind, f"{raw!r} is not a kind; expected one of {list(KINDS)}{hint}")
    if kind is None:
        kind = base.get("kind")
    category = spec.category or (row.get(cols.category) if cols.category else None) or base.get("category")
    reference = row.get(cols.reference) if cols.reference else base.get("reference")
    return PromptRecord(
        messages=messages,
        kind=kind,
        category=str(category) if category not in (None, "") else None,
        reference=str(reference) if reference not in (None, "") else None,
        provenance=provenance.model_copy(update={"row": index}),
    )


