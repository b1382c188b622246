"""`ascl-data train sft CONFIG` and `ascl-data train ifpo CONFIG`.

Training runs in this process; for several GPUs start the same command under accelerate:
`accelerate launch --num_processes 8 -m ascl_data.cli train ifpo CONFIG` (see rl/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

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
