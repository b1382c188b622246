"""SFT on ASCL traces: assistant-only loss with tool results masked, on SmolLM2's real tokenizer; LoRA; configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import Dataset

from ascl_data.errors import InputError
from ascl_data.rl.config import IFPOSettings, SFTSettings, load_config
from ascl_data.rl.sft import build_sft_trainer, run_sft
from ascl_data.rule_tool import TOOL_NAME, RuleTool
from ascl_data.rulebook import load_ruleset
from ascl_data.schemas import Message, Trace

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


def test_loss_mask_covers_assistant_turns_only(tiny_model_dir: Path, tmp_path: Path):
    ds = Dataset.from_list([_trace().to_row()])
    settings = SFTSettings(model=str(tiny_model_dir), dataset="unused", output_dir=str(tmp_path / "out"), max_length=None)
    trainer = build_sft_trainer(settings, train_dataset=ds)
    labelled, full = _labelled_text(trainer)
    tool_call = '<tool_call>\n{"name": "retrieve_safety_rules", "arguments": {"query": "building explosives", "top_k": 1}}\n</tool_call><|im_end|>\n'
    # exactly the two assistant turns (tool call, answer) with their end-of-turn tokens are trained on
    assert labelled == tool_call + ANSWER + "<|im_end|>\n"
    # everything else is in the input but masked: the system prompt, the user turn and the tool result
    assert "<tool_response>" in full and '"rules"' in full and "pipe bomb" in full
    assert "<tool_response>" not in labelled and '"rules"' not in labelled and "pipe bomb" not in labelled


def test_reasoning_is_rendered_inline_or_dropped(tiny_model_dir: Path, tmp_path: Path):
    ds = Dataset.from_list([_trace(reasoning="The rules forbid explosives.").to_row()])
    base = {"model": str(tiny_model_dir), "dataset": "unused", "output_dir": str(tmp_path / "o"), "max_length": None}
    inline, _ = _labelled_text(build_sft_trainer(SFTSettings(**base), train_dataset=ds))
    assert "<think>\nThe rules forbid explosives.\n</think>\n\n" + ANSWER in inline
    dropped, full = _labelled_text(build_sft_trainer(SFTSettings(**base, reasoning="drop"), train_dataset=ds))
    assert "The rules forbid" not in full and dropped.endswith(ANSWER + "<|im_end|>\n")


def test_lora_sft_trains_and_saves_a_plain_model(tiny_model_dir: Path, tmp_path: Path):
    pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    ds = Dataset.from_list([_trace().to_row()])
    out = tmp_path / "lora-out"
    settings = SFTSettings(
        model=str(tiny_model_dir), dataset="unused", output_dir=str(out), max_steps=1, learning_rate=1e-2,
        per_device_train_batch_size=1, max_length=None, lora={"r": 4, "alpha": 8},
    )
    trainer = build_sft_trainer(settings, train_dataset=ds)
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    assert 0 < trainable < total / 10  # only the adapters train
    metrics = run_sft(settings, train_dataset=ds)
    assert metrics["global_step"] == 1
    model = AutoModelForCausalLM.from_pretrained(out)  # merged: loads without peft
    assert not any("lora" in n for n, _ in model.named_parameters())


def test_config_errors_name_the_line(tmp_path: Path):
    path = tmp_path / "ifpo.yaml"
    path.write_text("model: m\ndataset: d\noutput_dir: o\nnum_generations: 3\nper_device_train_batch_size: 8\n"
                    "ifpo:\n  frequency: batch\n")
    with pytest.raises(InputError) as err:
        load_config(path, IFPOSettings)
    assert f"{path}:7" in str(err.value) and "frequency" in str(err.value)


def test_config_overrides_are_validated(tmp_path: Path):
    path = tmp_path / "sft.yaml"
    path.write_text("model: m\ndataset: d\noutput_dir: o\n")
    cfg = load_config(path, SFTSettings, ["max_steps=5", "lora.r=8"])
    assert cfg.max_steps == 5 and cfg.lora is not None and cfg.lora.r == 8
    with pytest.raises(InputError, match="--set"):
        load_config(path, SFTSettings, ["learning_rate=-1"])
    with pytest.raises(InputError, match="key=value"):
        load_config(path, SFTSettings, ["max_steps"])


def test_ifpo_config_checks_batch_against_groups(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({"model": "m", "dataset": "d", "output_dir": "o", "num_generations": 3,
                                "per_device_train_batch_size": 4}))
    with pytest.raises(InputError, match="multiple of num_generations"):
        load_config(path, IFPOSettings)


def test_ifpo_config_lets_a_group_span_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "ddp.yaml"
    path.write_text(json.dumps({"model": "m", "dataset": "d", "output_dir": "o", "num_generations": 8,
                                "per_device_train_batch_size": 4}))
    with pytest.raises(InputError, match=r"\(4, with 1 process"):
        load_config(path, IFPOSettings)
    monkeypatch.setenv("WORLD_SIZE", "2")  # as `accelerate launch` / torchrun set it: 2 x 4 rollouts = one group
    assert load_config(path, IFPOSettings).num_generations == 8
