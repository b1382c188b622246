"""Supervised fine-tuning on ASCL traces with TRL's SFTTrainer.

Loss is on assistant tokens only (tool calls and answers); system, user and tool-result tokens are masked. TRL
swaps in its training chat template with ``{% generation %}`` markers for the tokenizer's template, so the mask is
the tokenizer's own assistant-token mask, not a second parser of our making.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import Dataset

from ascl_data.rl.config import LoraSettings, SFTSettings
from ascl_data.rl.data import SFT_COLUMNS, load_split, require_columns
from ascl_data.schemas import inline_reasoning


def peft_config(lora: LoraSettings | None) -> Any:
    """A peft LoraConfig, or None for full fine-tuning (peft is only imported when LoRA is asked for)."""
    if lora is None:
        return None
    try:
        from peft import LoraConfig
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("LoRA needs peft: pip install 'ascl-data[peft]'") from exc
    return LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )


def _inline_reasoning(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**inline_reasoning(m), "reasoning_content": None} for m in messages]


def prepare_sft_dataset(ds: Dataset, reasoning: str = "inline") -> Dataset:
    """Keep `messages` and `tools` (a JSON string, which SFTTrainer json-loads); render reasoning as asked."""
    require_columns(ds, SFT_COLUMNS, "sft split")
    ds = ds.select_columns(list(SFT_COLUMNS))
    if reasoning == "inline":
        ds = ds.map(lambda row: {"messages": _inline_reasoning(row["messages"])})
    return ds


def build_sft_trainer(settings: SFTSettings, train_dataset: Dataset | None = None) -> Any:
    """An SFTTrainer for `settings`; `train_dataset` overrides loading the configured split."""
    from trl import SFTConfig, SFTTrainer

    if train_dataset is None:
        train_dataset = load_split(settings.dataset, settings.split, settings.max_samples, settings.seed)
    train_dataset = prepare_sft_dataset(train_dataset, settings.reasoning)
    args = SFTConfig(assistant_only_loss=True, max_length=settings.max_length, **settings.trainer_args())
    return SFTTrainer(
        model=settings.model, args=args, train_dataset=train_dataset, peft_config=peft_config(settings.lora)
    )


def save_model(trainer: Any, output_dir: str | Path) -> Path:
    """Save the trained model and tokenizer; LoRA adapters are merged so the folder loads as a plain model."""
    output_dir = Path(output_dir)
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(output_dir)
    trainer.processing_class.save_pretrained(output_dir)
    return output_dir


def run_sft(settings: SFTSettings, train_dataset: Dataset | None = None) -> dict[str, Any]:
    """Train, save to `output_dir` (if `save_final`), and return the training metrics."""
    trainer = build_sft_trainer(settings, train_dataset)
    result = trainer.train()
    if settings.save_final:
        save_model(trainer, settings.output_dir)
    return {"global_step": result.global_step, "train_loss": result.training_loss, **result.metrics}
