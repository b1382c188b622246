"""The row schema is written once: the parquet schemas of every split are derived from the Pydantic models
(`ascl_data.row_schema`), and a column has one type wherever it appears (issue 22: `attempts` was an int in `sft`
and a list in `rejects`)."""

from __future__ import annotations

import pyarrow as pa

from ascl_data.row_schema import PROMPT_SCHEMA, REJECT_SCHEMA, ROW_SCHEMA_ID, SCHEMAS, SFT_SCHEMA, arrow_type
from ascl_data.schemas import Rejection, Trace, TraceQuality

_str = pa.string()
# What the published `sft` split has always had: users' code reads these columns and types.
MESSAGE = pa.struct([
    ("role", _str), ("content", _str), ("reasoning_content", _str),
    ("tool_calls", pa.list_(pa.struct([("id", _str), ("type", _str),
                                       ("function", pa.struct([("name", _str), ("arguments", _str)]))]))),
    ("tool_call_id", _str), ("name", _str)])
PROVENANCE = pa.struct([("dataset", _str), ("config", _str), ("split", _str), ("revision", _str), ("row", pa.int64())])


def test_sft_columns_keep_their_published_types() -> None:
    expected = pa.schema([
        ("prompt_id", _str), ("kind", _str), ("category", _str), ("messages", pa.list_(MESSAGE)), ("tools", _str),
        ("generator", _str), ("teacher_model", _str), ("ruleset_name", _str), ("ruleset_version", _str),
        ("retrieved_rule_ids", pa.list_(_str)), ("num_tool_calls", pa.int64()), ("consulted", pa.bool_()),
        ("verdict", _str),
        ("judge", pa.list_(pa.struct([("judge", _str), ("verdict", _str), ("passed", pa.bool_()), ("detail", _str)]))),
        ("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()), ("reference", _str),
        ("provenance", PROVENANCE), ("teacher_calls", pa.int64()), ("attempts", pa.int64()),
        ("quality", arrow_type(TraceQuality))])
    assert SFT_SCHEMA.equals(expected), SFT_SCHEMA
    assert PROMPT_SCHEMA.equals(pa.schema([
        ("prompt_id", _str), ("prompt", pa.list_(pa.struct([("role", _str), ("content", _str)]))), ("kind", _str),
        ("category", _str), ("reference", _str), ("provenance", PROVENANCE)]))


def test_a_column_has_one_type_in_every_split() -> None:
    types: dict[str, dict[str, pa.DataType]] = {}
    for split, schema in SCHEMAS.items():
        for field in schema:
            types.setdefault(field.name, {})[split] = field.type
    mixed = {name: by_split for name, by_split in types.items() if len(set(map(str, by_split.values()))) > 1}
    assert not mixed, mixed
    assert REJECT_SCHEMA.field("attempts").type == pa.int64()
    assert REJECT_SCHEMA.field("attempt_reasons").type == pa.list_(_str)


def test_the_schemas_follow_the_models() -> None:
    """A field added to a model is a column of its split, in the model's order (new fields go last)."""
    assert SFT_SCHEMA.names == list(Trace.model_fields)
    assert REJECT_SCHEMA.names == list(Rejection.model_fields)
    assert len(ROW_SCHEMA_ID) == 16 and ROW_SCHEMA_ID.isalnum()


def test_a_build_of_another_row_layout_is_not_resumed_into(tmp_path, tiny_model_dir) -> None:
    """A build begun by a version that wrote other row types (an older `rejects.attempts` list) must not be resumed:
    its shards and the new ones would make one dataset that `load_dataset` cannot read. The user is told to build
    again (the teacher cache is kept), and --overwrite does."""
    import json

    from typer.testing import CliRunner

    from ascl_data.cli import app
    from ascl_data.errors import InputError
    from helpers import make_recipe

    recipe = make_recipe(tmp_path, tiny_model_dir, splits={"sft": 0, "rl": 6, "eval": 2})
    out = tmp_path / "out"
    assert CliRunner().invoke(app, ["build", str(recipe)]).exit_code == 0
    marker = out / ".ascl" / "build.json"
    state = json.loads(marker.read_text())
    assert state["row_schema"] == ROW_SCHEMA_ID
    del state["row_schema"]  # as a build made before the row schema was recorded
    marker.write_text(json.dumps(state))
    result = CliRunner().invoke(app, ["build", str(recipe)])
    assert isinstance(result.exception, InputError), result.output
    assert "row schema" in str(result.exception) and "--overwrite" in str(result.exception)
    assert CliRunner().invoke(app, ["build", str(recipe), "--overwrite"]).exit_code == 0
    assert json.loads(marker.read_text())["row_schema"] == ROW_SCHEMA_ID
