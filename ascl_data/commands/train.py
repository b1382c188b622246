"""`ascl-data train sft CONFIG`, `ascl-data train ifpo CONFIG` and `ascl-data eval`.

Training runs in this process; for several GPUs start the same command under accelerate:
`accelerate launch --num_processes 8 -m ascl_data.cli train ifpo CONFIG` (see rl/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

SET_HELP = "Override a config field: key=value (dotted for nesting, e.g. ifpo.w_max=3). Repeatable."


def register(app: typer.Typer) -> None:
    train = typer.Typer(help="Train on ASCL datasets: SFT, then IFPO RL with live rule retrieval.", no_args_is_help=True)

    @train.command("sft")
    def sft(
        config: Path = typer.Argument(..., help="SFT config YAML (see configs/sft_*.yaml)."),
        set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    ) -> None:
        """Supervised fine-tuning on the `sft` split, loss on assistant turns only."""
        from ascl_data.rl.config import SFTSettings, load_config
        from ascl_data.rl.sft import run_sft

        settings = load_config(config, SFTSettings, set_)
        metrics = run_sft(settings)
        Console().print_json(json.dumps(metrics))

    @train.command("ifpo")
    def ifpo(
        config: Path = typer.Argument(..., help="IFPO config YAML (see configs/ifpo_*.yaml)."),
        set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    ) -> None:
        """GRPO with IFPO advantages on the `rl` split, `retrieve_safety_rules` live in the rollouts."""
        from ascl_data.rl.config import IFPOSettings, load_config
        from ascl_data.rl.trainer import run_ifpo

        settings = load_config(config, IFPOSettings, set_)
        result = run_ifpo(settings)
        history = result.pop("log_history")
        Path(settings.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(settings.output_dir) / "log_history.json").write_text(json.dumps(history, indent=2))
        Console().print_json(json.dumps(result))

    app.add_typer(train, name="train")

    @app.command("eval")
    def eval_(
        model: str = typer.Option(..., "--model", help="Model folder or Hub id."),
        dataset: str = typer.Option(..., "--dataset", help="Built dataset folder, parquet/jsonl file, or Hub id."),
        split: str = typer.Option("eval", help="Split to evaluate."),
        ruleset: str = typer.Option("default", help="Rule book name or YAML file (the one trained with)."),
        backend: str = typer.Option("transformers", help="transformers or vllm."),
        backend_setting: list[str] = typer.Option(
            [], "--backend-setting", help="KEY=VALUE for the backend, repeatable, e.g. max_model_len=4096, dtype=bfloat16."
        ),
        max_samples: Optional[int] = typer.Option(None, help="Evaluate a seeded random subset."),
        max_new_tokens: int = typer.Option(256, help="Tokens per assistant turn."),
        max_turns: int = typer.Option(3, help="Assistant turns per conversation (tool calls + answer)."),
        system_prompt: str = typer.Option("adaptive", help="adaptive, none, or a text."),
        out: Path = typer.Option(Path("eval_report.json"), "--out", help="Where to write the JSON report."),
    ) -> None:
        """Safety, over-refusal, accuracy and consultation rate per prompt kind on held-out prompts."""
        from ascl_data.rl.config import EvalSettings, parse_overrides
        from ascl_data.rl.evaluate import evaluate, render_table, write_report

        from pydantic import ValidationError

        from ascl_data.errors import InputError, validation_problems

        try:
            settings = EvalSettings(
                model=model, dataset=dataset, split=split, ruleset=ruleset, backend=backend, max_samples=max_samples,
                max_new_tokens=max_new_tokens, max_turns=max_turns, system_prompt=system_prompt,
                backend_settings=parse_overrides(backend_setting, "--backend-setting"),
            )
        except ValidationError as exc:
            raise InputError("ascl-data eval options", validation_problems(exc, "command line")) from None
        report = evaluate(settings)
        console = Console()
        console.print(render_table(report))
        console.print(f"report: {write_report(report, out)}")
