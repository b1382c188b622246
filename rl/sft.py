"""Supervised fine-tuning on ASCL traces with TRL's SFTTrainer.

Loss is on assistant tokens only (tool calls and answers); system, user and tool-result tokens are masked. TRL
swaps in its training chat template with ``{% generation %}`` markers for the tokenizer's template, so the mask is
the tokenizer's own assistant-token mask, not a second parser of our making.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import Dataset

from ascl_data.rl.config import ASCLSFTConfig
from ascl_data.rl.data import SFT_COLUMNS, load_split, require_columns
from ascl_data.schemas import inline_reasoning


def _inline_reasoning(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**inline_reasoning(m), "reasoning_content": None} for m in messages]


def prepare_sft_dataset(ds: Dataset, reasoning: str = "inline") -> Dataset:
    """Keep `messages` and `tools` (a JSON string, which SFTTrainer json-loads); render reasoning as asked."""
    require_columns(ds, SFT_COLUMNS, "sft split")
    ds = ds.select_columns(list(SFT_COLUMNS))
    if reasoning == "inline":
        ds = ds.map(lambda row: {"messages": _inline_reasoning(row["messages"])})
    return ds


def build_sft_trainer(config: ASCLSFTConfig, train_dataset: Dataset | None = None) -> Any:
    """An SFTTrainer for `config` (itself the trainer's args); `train_dataset` overrides loading the configured split."""
    from trl import SFTTrainer

    if train_dataset is None:
        train_dataset = load_split(config.dataset_name, config.dataset_train_split, config.max_samples, config.seed)
    train_dataset = prepare_sft_dataset(train_dataset, config.reasoning)
    return SFTTrainer(
        model=config.model_name_or_path, args=config, train_dataset=train_dataset, peft_config=config.peft_config()
    )


def train_and_save(trainer: Any, resume_from_checkpoint: str | bool | None) -> Any:
    """`trainer.train()` (resuming as TRL's scripts do: a checkpoint folder, or `true` for the last one in
    output_dir), then the final model, tokenizer and `trainer_state.json` in output_dir. LoRA adapters are merged
    so the folder loads as a plain model."""
    if isinstance(resume_from_checkpoint, str) and resume_from_checkpoint.lower() in ("true", "last"):
        resume_from_checkpoint = True
    result = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    output_dir = Path(trainer.args.output_dir)
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    if trainer.accelerator.is_main_process:
        model.save_pretrained(output_dir)
        trainer.processing_class.save_pretrained(output_dir)
    trainer.save_state()
    return result


def run_sft(config: ASCLSFTConfig, train_dataset: Dataset | None = None) -> dict[str, Any]:
    """Train, save to `output_dir`, and return the training metrics."""
    trainer = build_sft_trainer(config, train_dataset)
    result = train_and_save(trainer, config.resume_from_checkpoint)
    return {"global_step": result.global_step, "train_loss": result.training_loss, **result.metrics}
