"""The parquet schema of every split, derived from the Pydantic models that validate the rows (`Trace` for `sft`,
`PromptRow` for `rl` and `eval`, `Rejection` for `rejects`): the row schema is written once, so a field has one
type in every split and a column cannot drift from its model. New model fields go last (older readers keep
working). `ROW_SCHEMA_ID` names this set of schemas: a build records it, and a resume refuses shards written under
another (`Layout.claim`), so one dataset never mixes two row layouts."""

from __future__ import annotations

import hashlib
import types
import typing
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel

from ascl_data.schemas import PromptRow, Rejection, Trace

_SCALARS: dict[Any, pa.DataType] = {int: pa.int64(), float: pa.float64(), str: pa.string(), bool: pa.bool_()}


def arrow_type(annotation: Any) -> pa.DataType:
    """The arrow type of a field annotation: a model is a struct of its fields, `X | None` is X (nullable), a
    `Literal` of strings is a string."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return pa.struct([(name, arrow_type(f.annotation)) for name, f in annotation.model_fields.items()])
    if origin is list:
        return pa.list_(arrow_type(args[0]))
    if origin is Literal:
        return _SCALARS[type(args[0])]
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return arrow_type(args[0])
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    raise TypeError(f"no arrow type for {annotation!r}: give the field an override")


def arrow_schema(model: type[BaseModel], overrides: dict[str, pa.DataType] | None = None) -> pa.Schema:
    """The schema of a model's rows; `overrides` for fields stored differently from their model type."""
    overrides = overrides or {}
    return pa.schema([(name, overrides.get(name) or arrow_type(f.annotation)) for name, f in model.model_fields.items()])


SFT_SCHEMA = arrow_schema(Trace, {"tools": pa.string()})  # `tools` as a JSON string (Trace.to_row), as TRL takes it
PROMPT_SCHEMA = arrow_schema(PromptRow)
REJECT_SCHEMA = arrow_schema(Rejection)
SCHEMAS = {"sft": SFT_SCHEMA, "rl": PROMPT_SCHEMA, "eval": PROMPT_SCHEMA, "rejects": REJECT_SCHEMA}
ROW_SCHEMA_ID = hashlib.sha256("\n".join(f"{k}: {v}" for k, v in SCHEMAS.items()).encode()).hexdigest()[:16]
