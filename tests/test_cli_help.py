"""`--help` reads well: `train sft|ifpo --help` names the command and lists ASCL's fields first, in a page, and
points to TRL's docs for the rest; `--help-all` is TRL's full field list under the right program name."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ascl_data.cli import app


@pytest.mark.parametrize("kind, own, trl", [
    ("sft", ["--model_name_or_path", "--dataset_name", "--reasoning"], "SFTConfig"),
    ("ifpo", ["--ruleset", "--ifpo_frequency", "--algorithm"], "GRPOConfig"),
])
def test_train_help_is_short_and_groups_ascl_fields_first(kind: str, own: list[str], trl: str) -> None:
    out = CliRunner().invoke(app, ["train", kind, "--help"])
    assert out.exit_code == 0
    text = out.output
    assert text.startswith(f"Usage: ascl-data train {kind} CONFIG")
    assert len(text.splitlines()) < 150
    ascl, common = text.index("ASCL fields:"), text.index(f"Common fields of TRL's {trl}:")
    assert ascl < common
    for name in own:
        assert ascl < text.index(f"  {name}\n") < common
    assert "  --output_dir\n" in text[common:]
    assert "https://huggingface.co/docs/trl/" in text


def test_train_help_all_has_every_field_under_the_command_name() -> None:
    out = CliRunner().invoke(app, ["train", "sft", "--help-all"])
    assert out.exit_code == 0
    assert out.output.startswith("usage: ascl-data train sft")
    assert "--lr_scheduler_type" in out.output and len(out.output.splitlines()) > 300
