"""What a build shows while it runs and at its end, where output goes to a file or a CI log (not a terminal)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from ascl_data.cli import app
from ascl_data.pipeline.progress import PlainProgress, RichProgress, progress_for
from helpers import BUILD_PROMPTS, make_recipe


def test_plain_lines_when_not_a_terminal() -> None:
    """A log gets a line at the start, every `every_s` seconds, and at the end; a terminal gets the bar."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    listener = progress_for(console)
    assert isinstance(listener, PlainProgress)
    listener.every_s = 0.0
    listener.started(4)
    listener.prompts_done(1, 1, 0, 0)
    listener.prompts_done(2, 0, 1, 1)
    listener.finished()
    lines = out.getvalue().splitlines()
    assert lines[0] == "build: started, 4 prompts expected"
    assert lines[1].startswith("build: 1/4 prompts (traces 1, stored 0, rejected 0)")
    assert lines[-1].startswith("build: 3/4 prompts (traces 1, stored 1, rejected 1)")
    assert isinstance(progress_for(Console(file=io.StringIO(), force_terminal=True)), RichProgress)


def test_build_log_says_traces_apart_from_stored_prompts(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The end summary counts accepted sft traces apart from rl/eval prompts the teacher never saw, and the
    progress lines show in the log (CliRunner's output is not a terminal)."""
    result = CliRunner().invoke(app, ["build", str(make_recipe(tmp_path, tiny_model_dir))], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "build: started" in result.output  # fractions: the total is not known in advance
    assert f"build: {len(BUILD_PROMPTS)} prompts (traces" in result.output
    assert "sft traces accepted" in result.output
    assert "rl / eval prompts stored (no teacher call)" in result.output
    assert "│ accepted " not in result.output
