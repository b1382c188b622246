"""The embedded teacher's seed adapter: its seed traces, how they are tokenized, and the top-layer LoRA training.

Training runs on the tiny random Llama on SmolLM2's tokenizer (`tiny_model_dir`), so these tests take seconds; the
real adapter's effect on the quickstart is measured in benchmarks/quickstart_yield.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from ascl_data.embedded_adapter import (
    AdapterSettings,
    adapter_key,
    load_seeds,
    seed_file,
    seed_messages,
    tokenize_with_mask,
    train_adapter,
)
from ascl_data.errors import InputError
from ascl_data.prompts import adaptive_system_prompt
from ascl_data.rule_tool import RuleTool
from ascl_data.rulebook import load_ruleset
from ascl_data.sources.local import expand_paths, iter_jsonl


@pytest.fixture(scope="module")
def rule_tool() -> RuleTool:
    return RuleTool(load_ruleset("default"))


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


def test_seed_traces_are_not_the_quickstart_prompts() -> None:
    """No leakage: a seed shares no prompt with the quickstart's source, and none is a near copy of one."""
    [quickstart] = expand_paths("package:quickstart_prompts.jsonl")
    prompts = [row["prompt"] for _, row in iter_jsonl(quickstart)]
    seeds = load_seeds()
    worst = max(len(_words(s.prompt) & _words(p)) / len(_words(s.prompt) | _words(p)) for s in seeds for p in prompts)
    assert not {s.prompt for s in seeds} & set(prompts)
    assert worst < 0.5, worst


def test_consulted_seeds_cite_the_rule_the_tool_returns(rule_tool: RuleTool) -> None:
    """Each consulted seed refuses and names the rule its query retrieves, so the adapter learns to cite what it read."""
    seeds = load_seeds()
    consulted = [s for s in seeds if s.query is not None]
    assert {s.kind for s in consulted} == {"harmful", "jailbreak"}
    assert {s.kind for s in seeds} == {"harmful", "jailbreak", "borderline", "benign", "reasoning"}
    for seed in consulted:
        top = rule_tool.search(seed.query, top_k=1)[0].rule.id
        assert top in seed.answer, (seed.prompt, top)


def test_a_bad_seed_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "seeds.jsonl"
    path.write_text(json.dumps({"prompt": "What is 2 + 2?", "kind": "reasoning", "answer": "4"}) + "\n{oops\n")
    with pytest.raises(InputError) as err:
        load_seeds(path)
    message = str(err.value)
    assert f"{path}:1" in message and "reference" in message and f"{path}:2" in message and "not JSON" in message


def test_trained_tokens_are_the_assistant_turns_as_a_backend_sees_them(smollm_tokenizer, rule_tool: RuleTool) -> None:
    """The loss covers the tool call, the answer and their end tokens; the rest is the prompt exactly as the chat
    template renders it for generation (the tool's real result included)."""
    seed = next(s for s in load_seeds() if s.kind == "jailbreak")
    messages, tools = seed_messages(seed, rule_tool, adaptive_system_prompt(rule_tool.ruleset))
    ids, mask = tokenize_with_mask(smollm_tokenizer, messages, tools)
    learned = smollm_tokenizer.decode([t for t, m in zip(ids, mask) if m])
    assert learned.startswith("<tool_call>\n") and f'"query": "{seed.query}"' in learned
    assert learned.endswith(seed.answer + "<|im_end|>") and learned.count("<|im_end|>") == 2
    first_answer = mask.index(True)
    prompt = smollm_tokenizer.decode(ids[:first_answer])
    from ascl_data.chat_format import to_hf_convention

    assert prompt == smollm_tokenizer.apply_chat_template(to_hf_convention(messages[:2]), tools=tools,
                                                          add_generation_prompt=True, tokenize=False)
    assert '"rules": [{"id": "' in smollm_tokenizer.decode(ids) and "<tool_response>" not in learned


def test_the_adapter_key_follows_the_seed_file(tmp_path: Path) -> None:
    copy = tmp_path / "seeds.jsonl"
    copy.write_bytes(seed_file().read_bytes())
    assert adapter_key(seeds=copy) == adapter_key()
    copy.write_bytes(seed_file().read_bytes() + b"\n")
    assert adapter_key(seeds=copy) != adapter_key()
    assert adapter_key(AdapterSettings(epochs=1)) != adapter_key()


def _tiny_seeds() -> list:
    seeds = load_seeds()
    return [next(s for s in seeds if s.kind == kind) for kind in ("harmful", "benign", "reasoning", "jailbreak")]


def test_top_layer_training_starts_from_the_full_models_loss(tiny_model_dir: Path, tmp_path: Path, smollm_tokenizer,
                                                            rule_tool: RuleTool) -> None:
    """The shortcut (shared head run once, lower layers run once, only the top layer trained) computes the same
    first loss as the whole model on the whole sequence, and training lowers it."""
    seeds = _tiny_seeds()
    settings = AdapterSettings(layers=1, rank=4, alpha=8, lr=5e-3, epochs=3, batch=len(seeds))
    log = train_adapter(tiny_model_dir, tmp_path / "a", settings, seeds=seeds)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    system = adaptive_system_prompt(rule_tool.ruleset)
    total, count = 0.0, 0
    with torch.no_grad():
        for seed in seeds:
            ids, mask = tokenize_with_mask(smollm_tokenizer, *seed_messages(seed, rule_tool, system))
            logits = model(input_ids=torch.tensor([ids])).logits[0, :-1]
            targets = torch.tensor(ids[1:])
            keep = torch.tensor(mask[1:])
            total += float(torch.nn.functional.cross_entropy(logits[keep], targets[keep], reduction="sum"))
            count += int(keep.sum())
    assert log["loss"][0] == pytest.approx(total / count, rel=1e-4)
    assert log["loss"][-1] < log["loss"][0]


def test_training_is_deterministic_and_touches_only_the_top_layers(tiny_model_dir: Path, tmp_path: Path) -> None:
    seeds = _tiny_seeds()[:2]
    settings = AdapterSettings(layers=1, rank=4, alpha=8, epochs=1)
    train_adapter(tiny_model_dir, tmp_path / "a", settings, seeds=seeds)
    train_adapter(tiny_model_dir, tmp_path / "b", settings, seeds=seeds)
    base, a, b = (AutoModelForCausalLM.from_pretrained(p).state_dict() for p in (tiny_model_dir, tmp_path / "a", tmp_path / "b"))
    assert set(a) == set(base)  # merged: a plain model, no LoRA tensors left
    for name in base:
        assert torch.equal(a[name], b[name]), name
        top = name.startswith("model.layers.1.") and name.endswith("proj.weight")
        assert torch.equal(a[name], base[name]) != top, name
    assert json.loads((tmp_path / "a" / "seed_adapter.json").read_text())["seeds"] == 2
