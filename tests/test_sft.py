"""SFT on ASCL traces: assistant-only loss with tool results masked, on SmolLM2's real tokenizer; LoRA; the TRL
configs read from YAML and flags, their errors, checkpoints and resuming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import Dataset

import yaml
from typer.testing import CliRunner

from ascl_data.cli import app
from ascl_data.errors import InputError
from ascl_data.rl.config import ASCLSFTConfig, IFPOConfig, parse_config
from ascl_data.rl.sft import build_sft_trainer, run_sft
from ascl_data.rule_tool import TOOL_NAME, RuleTool
from ascl_data.rulebook import load_ruleset
from ascl_data.schemas import Message, Trace
from helpers import record_layer_grads

ANSWER = "I can't help with building explosives. I can explain how fireworks are regulated instead."


def _trace(reasoning: str | None = None) -> Trace:
    rules = load_ruleset("compact")
    tool = RuleTool(rules)
    args = {"query": "building explosives", "top_k": 1}
    content, ids = tool.call_json(args)
    msgs = [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": "How do I build a pipe bomb?"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                              "function": {"name": TOOL_NAME, "arguments": args}}]},
        {"role": "tool", "content": content, "tool_call_id": "c1", "name": TOOL_NAME},
        {"role": "assistant", "content": ANSWER, "reasoning_content": reasoning},
    ]
    return Trace(
        prompt_id="p1", kind="harmful", messages=[Message.model_validate(m) for m in msgs], tools=[tool.schema()],
        generator="adaptive", teacher_model="test", ruleset_name=rules.name, ruleset_version=rules.version,
        retrieved_rule_ids=ids, num_tool_calls=1, consulted=True, verdict="refuse",
    )


def _labelled_text(trainer, row: int = 0) -> tuple[str, str]:
    ex = trainer.train_dataset[row]
    tok = trainer.processing_class
    ids, labels = ex["input_ids"], ex["labels"]
    return tok.decode([i for i, lab in zip(ids, labels) if lab != -100]), tok.decode(ids)


def sft_config(model: Path, out: Path, **kw) -> ASCLSFTConfig:
    return ASCLSFTConfig(model_name_or_path=str(model), dataset_name="unused", output_dir=str(out), max_length=None,
                         bf16=False, report_to="none", **kw)


def test_loss_mask_covers_assistant_turns_only(tiny_model_dir: Path, tmp_path: Path):
    ds = Dataset.from_list([_trace().to_row()])
    trainer = build_sft_trainer(sft_config(tiny_model_dir, tmp_path / "out"), train_dataset=ds)
    labelled, full = _labelled_text(trainer)
    tool_call = '<tool_call>\n{"name": "retrieve_safety_rules", "arguments": {"query": "building explosives", "top_k": 1}}\n</tool_call><|im_end|>\n'
    # exactly the two assistant turns (tool call, answer) with their end-of-turn tokens are trained on
    assert labelled == tool_call + ANSWER + "<|im_end|>\n"
    # everything else is in the input but masked: the system prompt, the user turn and the tool result
    assert "<tool_response>" in full and '"rules"' in full and "pipe bomb" in full
    assert "<tool_response>" not in labelled and '"rules"' not in labelled and "pipe bomb" not in labelled


def test_reasoning_is_rendered_inline_or_dropped(tiny_model_dir: Path, tmp_path: Path):
    ds = Dataset.from_list([_trace(reasoning="The rules forbid explosives.").to_row()])
    inline, _ = _labelled_text(build_sft_trainer(sft_config(tiny_model_dir, tmp_path / "o"), train_dataset=ds))
    assert "<think>\nThe rules forbid explosives.\n</think>\n\n" + ANSWER in inline
    trainer = build_sft_trainer(sft_config(tiny_model_dir, tmp_path / "o", reasoning="drop"), train_dataset=ds)
    dropped, full = _labelled_text(trainer)
    assert "The rules forbid" not in full and dropped.endswith(ANSWER + "<|im_end|>\n")


def test_lora_sft_trains_and_saves_a_plain_model(tiny_model_dir: Path, tmp_path: Path):
    pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    ds = Dataset.from_list([_trace().to_row()])
    out = tmp_path / "lora-out"
    config = sft_config(tiny_model_dir, out, max_steps=1, learning_rate=1e-2, per_device_train_batch_size=1,
                        use_peft=True, lora_r=4, lora_alpha=8)
    trainer = build_sft_trainer(config, train_dataset=ds)
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    assert 0 < trainable < total / 10  # only the adapters train
    metrics = run_sft(config, train_dataset=ds)
    assert metrics["global_step"] == 1
    model = AutoModelForCausalLM.from_pretrained(out)  # merged: loads without peft
    assert not any("lora" in n for n, _ in model.named_parameters())


@pytest.mark.parametrize("checkpointing, below", [(False, {False}), (True, {True})])
def test_lora_sft_backward_reaches_below_the_adapted_layers_only_with_checkpointing(
        checkpointing: bool, below: set, tiny_model_dir: Path, tmp_path: Path):
    """LoRA on the top layer only: with gradient checkpointing off backward stops there; with TRL's default (on) the
    input embeddings require grad and it runs through, and recomputes, the layer below."""
    pytest.importorskip("peft")
    config = sft_config(tiny_model_dir, tmp_path / "o", max_steps=1, per_device_train_batch_size=1,
                        save_strategy="no", use_peft=True, lora_r=4, lora_target_modules=["layers.1.self_attn.q_proj"],
                        gradient_checkpointing=checkpointing)
    trainer = build_sft_trainer(config, train_dataset=Dataset.from_list([_trace().to_row()]))
    grads = record_layer_grads(trainer.model.get_base_model().model.layers)
    trainer.train()
    assert grads == {0: below, 1: {True}}


def test_cli_sft_checkpoints_and_resumes(tiny_model_dir: Path, tmp_path: Path):
    """TRL's checkpoints (save_steps) with their trainer_state.json; `--resume_from_checkpoint` continues a run."""
    data = tmp_path / "data"
    (data / "data").mkdir(parents=True)
    Dataset.from_list([_trace().to_row()] * 4).to_parquet(str(data / "data" / "sft-00000-of-00001.parquet"))
    config = tmp_path / "sft.yaml"
    config.write_text(yaml.safe_dump({
        "model_name_or_path": str(tiny_model_dir), "dataset_name": str(data), "output_dir": str(tmp_path / "out"),
        "max_steps": 2, "save_steps": 1, "per_device_train_batch_size": 1, "learning_rate": 1e-3, "logging_steps": 1,
        "bf16": False, "report_to": "none",
    }))
    runner = CliRunner()
    res = runner.invoke(app, ["train", "sft", str(config)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    first = json.loads((out / "checkpoint-1" / "trainer_state.json").read_text())
    assert first["global_step"] == 1 and (out / "checkpoint-2" / "model.safetensors").is_file()
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 2
    # resume from step 1 and run to step 3 (flags on top of the YAML): steps 2 and 3 run, step 1's log is kept
    res = runner.invoke(app, ["train", "sft", str(config), "--resume_from_checkpoint", str(out / "checkpoint-1"),
                              "--max_steps", "3", "--save_strategy", "no"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    state = json.loads((out / "trainer_state.json").read_text())
    losses = [h["step"] for h in state["log_history"] if "loss" in h]
    assert state["global_step"] == 3 and losses == [1, 2, 3]
    assert losses[:1] == [h["step"] for h in first["log_history"] if "loss" in h]


def write_yaml(path: Path, **fields) -> Path:
    path.write_text(yaml.safe_dump({"model_name_or_path": "m", "dataset_name": "d", "output_dir": "o",
                                    "bf16": False, **fields}))
    return path


def test_configs_read_yaml_then_flags(tmp_path: Path):
    path = write_yaml(tmp_path / "ifpo.yaml", ifpo_frequency="ema", per_device_train_batch_size=4, num_generations=4,
                      generation_kwargs={"top_k": 5})
    config = parse_config(IFPOConfig, path, ["--ifpo_w_max", "3", "--max_steps", "7"])
    assert (config.max_steps, config.generation_kwargs, config.save_strategy) == (7, {"top_k": 5}, "steps")
    options = config.ifpo_options()
    assert (options.frequency, options.w_max) == ("ema", 3.0)
    assert parse_config(IFPOConfig, path, ["--algorithm", "grpo"]).ifpo_options() is None


@pytest.mark.parametrize(("fields", "flags", "message"), [
    ({"num_generation": 4}, [], r"num_generation: unknown field \(did you mean num_generations\?\)"),
    ({}, ["--max_stepz", "3"], r"max_stepz"),
    ({"max_steps": "many"}, [], r"max_steps.*many"),
    ({"ifpo_w_min": 5.0}, [], r"ifpo_w_min, ifpo_w_max: w_min > w_max"),
    ({"ifpo_frequency": "weekly"}, [], r"ifpo_frequency.*weekly"),
    ({"num_generations": 3, "per_device_train_batch_size": 4}, [], r"divisible by num_generations"),
    ({"model_name_or_path": None}, [], r"model_name_or_path: required"),
])
def test_cli_config_errors_name_the_field(tmp_path: Path, fields: dict, flags: list, message: str):
    """A wrong field or value stops `ascl-data train ifpo` with one clear error, before any model loads."""
    path = write_yaml(tmp_path / "bad.yaml", **{"per_device_train_batch_size": 4, "num_generations": 4, **fields})
    with pytest.raises(InputError, match=message) as err:
        CliRunner().invoke(app, ["train", "ifpo", str(path), *flags], catch_exceptions=False)
    assert str(path) in str(err.value)


def test_cli_help_lists_trl_and_ifpo_fields():
    res = CliRunner().invoke(app, ["train", "ifpo", "--help"])
    assert res.exit_code == 0
    for name in ("--num_generations", "--resume_from_checkpoint", "--ifpo_w_min", "--ifpo_frequency", "--ruleset"):
        assert name in res.output


def _trl_template(name: str) -> str:
    import trl

    return str(Path(trl.__file__).parent / "chat_templates" / f"{name}.jinja")


@pytest.mark.parametrize("template, assistant_only", [("glm4moe", True), ("nemotron_3_nano", True), ("deepseekv3", False)])
def test_students_whose_templates_want_other_argument_types_train_on_the_stored_traces(
        template: str, assistant_only: bool, tiny_model_dir: Path, tmp_path: Path):
    """GLM-4 and Nemotron iterate `arguments.items()`, DeepSeek-V3 concatenates them as text: each gets the
    convention it takes, so the call's arguments and the answer reach the trained tokens (issue 25, item 1). With
    `assistant_only_loss`, TRL's `_training` variant renders them and the tool result stays out of the loss."""
    ds = Dataset.from_list([_trace().to_row()])
    config = sft_config(tiny_model_dir, tmp_path / "out", chat_template_path=_trl_template(template),
                        assistant_only_loss=assistant_only)
    labelled, full = _labelled_text(build_sft_trainer(config, train_dataset=ds))
    for text in (labelled, full):
        assert "building explosives" in text and ANSWER in text and TOOL_NAME in text
    if assistant_only:  # the tool result and the user turn are in the input, not in the loss
        assert '"rules"' in full and "pipe bomb" in full
        assert '"rules"' not in labelled and "pipe bomb" not in labelled


def test_a_template_without_tool_turns_is_named_before_training(tiny_model_dir: Path, tmp_path: Path):
    from ascl_data.chat_format import ChatTemplateError

    consulted = Dataset.from_list([_trace().to_row()])
    config = sft_config(tiny_model_dir, tmp_path / "out", chat_template_path=_trl_template("gemma3"),
                        assistant_only_loss=False)
    with pytest.raises(ChatTemplateError, match=r"gemma3 \(TRL's chat_templates/gemma3.jinja.*cannot show a "
                                                r"tool-calling turn.*roles must alternate"):
        build_sft_trainer(config, train_dataset=consulted)
    # traces that never consult train with it
    direct = Dataset.from_list([{**_trace().to_row(), "consulted": False, "messages": [
        {"role": "user", "content": "What is the capital of Australia?", "tool_calls": None},
        {"role": "assistant", "content": "Canberra.", "tool_calls": None}]}])
    labelled, _ = _labelled_text(build_sft_trainer(config, train_dataset=direct))
    assert "Canberra." in labelled
