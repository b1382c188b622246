"""`ascl-data train sft CONFIG [--field value ...]` and `ascl-data train ifpo CONFIG [--field value ...]`.

Training configs are TRL's (`SFTConfig`, `GRPOConfig`) with ASCL's fields, read by `trl.TrlParser`: a YAML file,
then `--field value` flags on top; `--help` lists every field with TRL's help. For several GPUs start the same
command under accelerate: `accelerate launch --num_processes 8 $(which ascl-data) train ifpo CONFIG`.
"""

from __future__ import annotations

import json
from typing import Optional
from pathlib import Path

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
