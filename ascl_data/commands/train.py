"""`ascl-data train sft CONFIG [--field value ...]`, `ascl-data train ifpo CONFIG [...]` and `ascl-data eval`.

Training configs are TRL's (`SFTConfig`, `GRPOConfig`) with ASCL's fields, read by `trl.TrlParser`: a YAML file,
then `--field value` flags on top; `--help` lists every field with TRL's help. For several GPUs start the same
command under accelerate: `accelerate launch --num_processes 8 $(which ascl-data) train ifpo CONFIG`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

TRAIN_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}
CONFIG_HELP = "Config YAML (see configs/{}_*.yaml); then any config field as a flag, e.g. --max_steps 5. --help: fields."


def _config(kind: str, config: Optional[Path], args: list[str]):
    """The parsed config, or TRL's field help (with `--help` or no config) and exit."""
    from ascl_data.rl.config import ASCLSFTConfig, IFPOConfig, config_parser, parse_config

    cls = ASCLSFTConfig if kind == "sft" else IFPOConfig
    if config is None or str(config) in ("--help", "-h") or "--help" in args or "-h" in args:
        typer.echo(config_parser(cls).format_help())
        raise typer.Exit(0 if config is not None else 2)
    return parse_config(cls, config, args)


def register(app: typer.Typer) -> None:
    train = typer.Typer(help="Train on ASCL datasets: SFT, then IFPO RL with live rule retrieval.", no_args_is_help=True)

    @train.command("sft", context_settings=TRAIN_CONTEXT)
    def sft(
        ctx: typer.Context,
        config: Optional[Path] = typer.Argument(None, help=CONFIG_HELP.format("sft"), show_default=False),
    ) -> None:
        """Supervised fine-tuning on the `sft` split, loss on assistant turns only (TRL's SFTTrainer)."""
        from ascl_data.rl.sft import run_sft

        metrics = run_sft(_config("sft", config, ctx.args))
        Console().print_json(json.dumps(metrics))

    @train.command("ifpo", context_settings=TRAIN_CONTEXT)
    def ifpo(
        ctx: typer.Context,
        config: Optional[Path] = typer.Argument(None, help=CONFIG_HELP.format("ifpo"), show_default=False),
    ) -> None:
        """GRPO with IFPO advantages on the `rl` split, `retrieve_safety_rules` live in the rollouts."""
        from ascl_data.rl.trainer import run_ifpo

        result = run_ifpo(_config("ifpo", config, ctx.args))
        result.pop("log_history")  # in output_dir/trainer_state.json
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
