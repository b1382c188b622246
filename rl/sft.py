"""Supervised fine-tuning on ASCL traces with TRL's SFTTrainer.

Loss is on assistant tokens only (tool calls and answers); system, user and tool-result tokens are masked. TRL
swaps in its training chat template with ``{% generation %}`` markers for the tokenizer's template, so the mask is
the tokenizer's own assistant-token mask, not a second parser of our making.

Any student: the rows are presented in the convention the chat template that will render them takes (tool-call
arguments as mappings or as JSON strings, found by rendering a probe trace with it: `template_convention`), so GLM-4,
LFM2, Nemotron and DeepSeek-V3 students train as Qwen and Llama ones do; a template that cannot show a tool turn is
an error naming it, before any model is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import Dataset

from ascl_data.chat_format import ChatTemplateError, Convention, present_for_template, template_convention
from ascl_data.rl.config import ASCLSFTConfig
from ascl_data.rl.data import SFT_COLUMNS, load_split, require_columns
from ascl_data.schemas import inline_reasoning


def _drop(message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "reasoning_content": None}


def prepare_sft_dataset(ds: Dataset, reasoning: str = "inline", convention: Convention = "mapping") -> Dataset:
    """Keep `messages` and `tools` (a JSON string, which SFTTrainer json-loads); render reasoning as asked (inline
    as <think>...</think>, or dropped); messages in the chat convention the student's template takes."""
    require_columns(ds, SFT_COLUMNS, "sft split")
    ds = ds.select_columns(list(SFT_COLUMNS))
    return present_for_template(ds, convention, inline_reasoning if reasoning == "inline" else _drop)


def training_template(config: ASCLSFTConfig) -> tuple[Any, str | None, str]:
    """The tokenizer SFTTrainer will load, the chat template it will render with (None: the tokenizer's own) and
    where that template comes from: TRL's rules, read off its `SFTTrainer.__init__`: `chat_template_path` (a
    .jinja file, or a tokenizer whose template is cloned) replaces the model's; with `assistant_only_loss`, a
    template without `{% generation %}` markers is swapped for TRL's `_training` variant."""
    from transformers import AutoTokenizer
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    tokenizer = AutoTokenizer.from_pretrained(config.model_name_or_path)
    source = config.model_name_or_path
    template = None
    path = getattr(config, "chat_template_path", None)
    if path:
        source = path
        template = (Path(path).read_text(encoding="utf-8") if Path(path).is_file()
                    else AutoTokenizer.from_pretrained(path).chat_template)
        tokenizer.chat_template = template
    if config.assistant_only_loss and tokenizer.chat_template and not has_generation_markers(tokenizer.chat_template):
        try:
            template = get_training_chat_template(tokenizer)
        except (ValueError, NotImplementedError, KeyError):
            pass  # TRL raises its own error for a template it has no training variant of; leave that to it
    return tokenizer, template, source


def student_convention(config: ASCLSFTConfig, ds: Dataset) -> Convention:
    """The convention of the template the student trains with; a template that cannot show a tool turn is an error
    only when the split has traces that consult (`consulted`), else any convention will do."""
    tokenizer, template, source = training_template(config)
    try:
        return template_convention(tokenizer, template, source)
    except ChatTemplateError:
        if "consulted" in ds.column_names and not any(ds["consulted"]):
            return "mapping"
        raise


def build_sft_trainer(config: ASCLSFTConfig, train_dataset: Dataset | None = None) -> Any:
    """An SFTTrainer for `config` (itself the trainer's args); `train_dataset` overrides loading the configured split."""
    from trl import SFTTrainer

    if train_dataset is None:
        train_dataset = load_split(config.dataset_name, config.dataset_train_split, config.max_samples, config.seed)
    convention = student_convention(config, train_dataset)
    train_dataset = prepare_sft_dataset(train_dataset, config.reasoning, convention)
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
