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


TRL_DOCS = {"sft": "https://huggingface.co/docs/trl/sft_trainer#trl.SFTConfig",
            "ifpo": "https://huggingface.co/docs/trl/grpo_trainer#trl.GRPOConfig"}
# TRL fields a run usually sets, listed after ASCL's own in `--help` (every other field works too)
COMMON_TRL = ("output_dir", "max_steps", "num_train_epochs", "learning_rate", "per_device_train_batch_size",
              "gradient_accumulation_steps", "max_length", "num_generations", "max_completion_length", "beta",
              "use_vllm", "bf16", "gradient_checkpointing", "logging_steps", "save_steps", "resume_from_checkpoint",
              "report_to", "seed")


def short_help(kind: str, cls: type) -> str:
    """`train sft|ifpo --help`: the command, ASCL's fields first, then the common TRL fields, and where the rest
    are documented (TRL's own help runs to a thousand lines: `--help-all`)."""
    import dataclasses
    import textwrap

    from trl import GRPOConfig, SFTConfig

    base = {f.name for f in dataclasses.fields(SFTConfig if kind == "sft" else GRPOConfig)}
    fields = {f.name: f for f in dataclasses.fields(cls)}

    def row(name: str) -> str:
        f = fields[name]
        default = f.default if f.default is not dataclasses.MISSING else "(computed)"
        help_ = " ".join(str(f.metadata.get("help", "")).split())
        text = textwrap.fill(f"{help_} Default: {default}.", width=110, initial_indent="      ",
                             subsequent_indent="      ")
        return f"  --{name}\n{text}"

    doc = " ".join((cls.__doc__ or "").split()) if kind == "ifpo" else (
        "`ascl-data train sft`: TRL's SFTConfig with ASCL's fields, on the `sft` split, loss on assistant turns only.")
    parts = [f"Usage: ascl-data train {kind} CONFIG [--FIELD VALUE]...", "", textwrap.fill(doc, 110), "",
             f"CONFIG is a YAML file of config fields (see configs/{kind}_*.yaml); any field may also be given as "
             "a flag, which wins over the file.", "", "ASCL fields:"]
    parts += [row(n) for n in fields if n not in base]
    parts += ["", f"Common fields of TRL's {'SFTConfig' if kind == 'sft' else 'GRPOConfig'}:"]
    parts += [row(n) for n in COMMON_TRL if n in fields and n in base]
    parts += ["", "Every other field of TRL's config and transformers' TrainingArguments works the same way: "
              f"{TRL_DOCS[kind]}", f"`ascl-data train {kind} --help-all` lists them all."]
    return "\n".join(parts)


def _config(kind: str, config: Optional[Path], args: list[str]):
    """The parsed config, or the help (with `--help`, `--help-all` or no config) and exit."""
    from ascl_data.rl.config import ASCLSFTConfig, IFPOConfig, config_parser, parse_config

    cls = ASCLSFTConfig if kind == "sft" else IFPOConfig
    words = [str(config), *args] if config is not None else list(args)
    if "--help-all" in words:
        parser = config_parser(cls)
        parser.prog = f"ascl-data train {kind}"
        typer.echo(parser.format_help())
        raise typer.Exit(0)
    if config is None or {"--help", "-h"} & set(words):
        typer.echo(short_help(kind, cls))
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
