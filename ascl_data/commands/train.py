"""`ascl-data train sft CONFIG [--field value ...]` and `ascl-data train ifpo CONFIG [--field value ...]`.

Training configs are TRL's (`SFTConfig`, `GRPOConfig`) with ASCL's fields, read by `trl.TrlParser`: a YAML file,
then `--field value` flags on top; `--help` lists every field with TRL's help. For several GPUs start the same
command under accelerate: `accelerate launch --num_processes 8 $(which ascl-data) train ifpo CONFIG`.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.console import Console

from ascl_data.errors import InputError, Problem
from ascl_data.lazy import require_extra

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


LOADED_FIELDS = ("dataset_name", "model_name_or_path")  # in the order the trainers load them
MAKE_FIRST = {
    "dataset_name": "make it first (`python -m ascl_data.rl.toy DIR`, `ascl-data build RECIPE`) or name a Hub dataset",
    "model_name_or_path": "train it first (`ascl-data train sft ...`) or name a Hub model",
}


def _hub_failure(exc: BaseException) -> str | None:
    """Why a model or dataset could not come from the Hub, in a few words; None when `exc` is not such a failure.
    datasets and transformers re-raise the Hub's errors as ConnectionError/OSError, so the whole chain is read."""
    from datasets.exceptions import DatasetNotFoundError
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError, HFValidationError, LocalEntryNotFoundError, OfflineModeIsEnabled, RepositoryNotFoundError,
    )  # fmt: skip

    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    offline = constants.HF_HUB_OFFLINE or any(isinstance(e, OfflineModeIsEnabled) for e in chain)
    names = {type(e).__name__ for e in chain}
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, GatedRepoError) for e in chain):
        return "it is gated on the Hub: accept its terms on its page, then log in (`hf auth login` or HF_TOKEN)"
    if any(isinstance(e, (RepositoryNotFoundError, DatasetNotFoundError)) for e in chain):
        return "no such repository on the Hub (or this account cannot see it)"
    if any(isinstance(e, HFValidationError) for e in chain):
        return "not a valid Hub id either"
    if offline and (names & {"LocalEntryNotFoundError", "OfflineModeIsEnabled"} or "Couldn't reach" in text):
        return "HF_HUB_OFFLINE is set and the local Hub cache does not have it"
    if any(isinstance(e, LocalEntryNotFoundError) for e in chain) or "Couldn't reach" in text or names & {
        "ConnectError", "ConnectTimeout", "ConnectionError", "ConnectionRefusedError",
    }:  # fmt: skip
        return "the Hub cannot be reached (check the network or HF_ENDPOINT)"
    return None


@contextmanager
def _loading(config_file: Path, config: Any) -> Iterator[None]:
    """A model or dataset that is neither a local path nor loadable from the Hub becomes one InputError naming the
    config file and field, instead of datasets'/transformers' tracebacks. Other errors pass through unchanged."""
    try:
        yield
    except Exception as exc:
        missing = [f for f in LOADED_FIELDS if not Path(getattr(config, f)).exists()]
        why = _hub_failure(exc) if missing else None  # both local: a Hub error is not about loading them
        if why is None:
            raise
        named = [f for f in missing if f"'{getattr(config, f)}'" in str(exc)]
        field = (named or missing)[0]
        value = getattr(config, field)
        problem = f"{value!r} is not a local folder or file, and {why}; {MAKE_FIRST[field]}"
        raise InputError(f"config {config_file}", [Problem(str(config_file), field, problem)]) from None


def register(app: typer.Typer) -> None:
    train = typer.Typer(help="Train on ASCL datasets: SFT, then IFPO RL with live rule retrieval.", no_args_is_help=True)

    @train.command("sft", context_settings=TRAIN_CONTEXT)
    def sft(
        ctx: typer.Context,
        config: Optional[Path] = typer.Argument(None, help=CONFIG_HELP.format("sft"), show_default=False),
    ) -> None:
        """Supervised fine-tuning on the `sft` split, loss on assistant turns only (TRL's SFTTrainer)."""
        require_extra("train", "ascl-data train sft")
        from ascl_data.rl.sft import run_sft

        cfg = _config("sft", config, ctx.args)
        with _loading(config, cfg):
            metrics = run_sft(cfg)
        Console().print_json(json.dumps(metrics))

    @train.command("ifpo", context_settings=TRAIN_CONTEXT)
    def ifpo(
        ctx: typer.Context,
        config: Optional[Path] = typer.Argument(None, help=CONFIG_HELP.format("ifpo"), show_default=False),
    ) -> None:
        """GRPO with IFPO advantages on the `rl` split, `retrieve_safety_rules` live in the rollouts."""
        require_extra("train", "ascl-data train ifpo")
        from ascl_data.rl.trainer import run_ifpo

        cfg = _config("ifpo", config, ctx.args)
        with _loading(config, cfg):
            result = run_ifpo(cfg)
        result.pop("log_history")  # in output_dir/trainer_state.json
        Console().print_json(json.dumps(result))

    app.add_typer(train, name="train")
