"""The embedded teacher's seed adapter: its seed traces, how they are tokenized, the top-layer LoRA training, the
shipped factors and their plain-torch merge.

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

from ascl_data.backends.transformers_backend import EMBEDDED, _resolve_model
from ascl_data.embedded import EMBEDDED_MODEL_NAME, embedded_model_path
from ascl_data.embedded_adapter import (
    ADAPTER_FILE,
    TARGET_MODULES,
    AdapterSettings,
    adapted_model_path,
    data_file,
    greedy_check,
    load_adapter,
    load_seeds,
    lora_tensors,
    merge_adapter_files,
    save_adapter,
    seed_messages,
    sha256_file,
    tokenize_with_mask,
    train_adapter,
    training_inputs,
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


def _tiny_seeds() -> list:
    seeds = load_seeds()
    return [next(s for s in seeds if s.kind == kind) for kind in ("harmful", "benign", "reasoning", "jailbreak")]


def test_top_layer_training_starts_from_the_full_models_loss(tiny_model_dir: Path, tmp_path: Path, smollm_tokenizer,
                                                            rule_tool: RuleTool) -> None:
    """The shortcut (shared head run once, lower layers run once, only the top layer trained) computes the same
    first loss as the whole model on the whole sequence, and training lowers it."""
    seeds = _tiny_seeds()
    settings = AdapterSettings(layers=1, rank=4, alpha=8, lr=5e-3, epochs=3, batch=len(seeds))
    _, log = train_adapter(tiny_model_dir, settings, seeds=seeds)
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


def test_training_is_deterministic_and_adapts_only_the_top_layers(tiny_model_dir: Path) -> None:
    seeds = _tiny_seeds()[:2]
    settings = AdapterSettings(layers=1, rank=4, alpha=8, epochs=1)
    a, log = train_adapter(tiny_model_dir, settings, seeds=seeds)
    b, _ = train_adapter(tiny_model_dir, settings, seeds=seeds)
    part = {m: "self_attn" if m in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp" for m in TARGET_MODULES}
    assert sorted(a) == sorted(f"model.layers.1.{part[m]}.{m}.lora_{x}" for m in TARGET_MODULES for x in "AB")
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert log["seeds"] == 2 and any(t.abs().sum() > 0 for n, t in a.items() if n.endswith("lora_B"))


# --------------------------------------------------------------------------- the shipped adapter


def test_the_shipped_adapter_was_trained_on_what_ships() -> None:
    """The manifest records the sha256 of the seed file and of the base GGUF it was trained on: editing the seeds
    (or changing the base model) without retraining (`python -m ascl_data.embedded_adapter`) fails here. The rule
    book and system prompt are recorded too but not enforced: an edit to them shifts the traces' tool results and
    wording a little, and other work edits them often."""
    manifest = json.loads(data_file(ADAPTER_FILE).with_suffix(".json").read_text())
    inputs = training_inputs()
    assert manifest["seed_traces_sha256"] == sha256_file(data_file("seed_traces.jsonl")) == inputs["seed_traces_sha256"]
    assert (manifest["gguf_file"], manifest["gguf_sha256"]) == (inputs["gguf_file"], inputs["gguf_sha256"])
    assert set(manifest) >= set(inputs)


def test_the_shipped_adapter_is_small_half_precision_lora_factors() -> None:
    """Only A and B of the top 6 layers' projections ship, in the dtype the manifest chose because it left every
    greedy answer on the seeds unchanged."""
    path = data_file(ADAPTER_FILE)
    tensors, manifest = load_adapter(path)
    assert path.stat().st_size < 4_000_000
    assert manifest["greedy_check"][manifest["dtype"]] == manifest["greedy_check"]["turns"]
    assert {str(t.dtype) for t in tensors.values()} == {f"torch.{manifest['dtype']}"}
    layers = {int(n.split(".")[2]) for n in tensors}
    assert layers == set(range(30 - manifest["settings"]["layers"], 30)) and len(tensors) == 2 * 7 * len(layers)
    assert manifest["scale"] == manifest["settings"]["alpha"] / manifest["settings"]["rank"]


def test_plain_torch_merge_equals_peft_merge(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The run-time merge (no peft) gives the weights peft's `merge_and_unload` gives, through the saved files."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    config = LoraConfig(r=4, lora_alpha=12, target_modules=list(TARGET_MODULES), layers_to_transform=[1],
                        init_lora_weights=False)  # random B too: a merge of zeros would prove nothing
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), config)
    save_adapter(lora_tensors(peft_model), tmp_path / ADAPTER_FILE, {"scale": 12 / 4}, "float32")
    tensors, manifest = load_adapter(tmp_path / ADAPTER_FILE)
    merge_adapter_files(tiny_model_dir, tensors, manifest["scale"], tmp_path / "merged", "test")
    ours = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").state_dict()
    theirs = peft_model.merge_and_unload().state_dict()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    assert set(ours) == set(theirs)
    for name in theirs:
        torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=1e-6)
        assert torch.equal(ours[name], base[name]) != (name.startswith("model.layers.1.") and "proj" in name), name


def test_greedy_check_counts_unchanged_answers(tiny_model_dir: Path) -> None:
    """Teacher-forcing the float32 model's own greedy answers reproduces all of them (the check is exact), and
    factors rounded to bfloat16 can only keep or change answers, never add turns."""
    from peft import LoraConfig, get_peft_model

    seeds = _tiny_seeds()[:2]
    config = LoraConfig(r=4, target_modules=list(TARGET_MODULES), layers_to_transform=[1], init_lora_weights=False)
    tensors = lora_tensors(get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), config))
    check = greedy_check(tiny_model_dir, tensors, 2.0, dtypes=("float32", "bfloat16"), seeds=seeds, max_tokens=6)
    turns = sum(1 + (s.query is not None) for s in seeds)
    assert check["turns"] == turns and check["float32"] == turns and 0 <= check["bfloat16"] <= turns


def test_seed_adapter_false_gives_the_bare_model_and_true_the_merged_one() -> None:
    """`teacher.settings.seed_adapter: false` runs the converted GGUF as it is; the default runs it with the shipped
    factors merged (W + scale * B @ A in the top layers, nothing else changed), cached by the adapter's sha256."""
    from safetensors.torch import load_file

    assert _resolve_model(EMBEDDED, seed_adapter=False) == str(embedded_model_path())
    merged = Path(_resolve_model(EMBEDDED, seed_adapter=True))
    assert merged == adapted_model_path()
    assert merged.name == f"{EMBEDDED_MODEL_NAME}-seed-{sha256_file(data_file(ADAPTER_FILE))[:16]}"
    tensors, manifest = load_adapter(data_file(ADAPTER_FILE))
    base, ours = load_file(embedded_model_path() / "model.safetensors"), load_file(merged / "model.safetensors")
    assert set(base) == set(ours)
    changed = {n for n in base if not torch.equal(base[n], ours[n])}
    assert changed == {n.replace(".lora_A", ".weight") for n in tensors if n.endswith(".lora_A")}
    name = sorted(changed)[0]
    module = name.removesuffix(".weight")
    delta = manifest["scale"] * tensors[f"{module}.lora_B"].float() @ tensors[f"{module}.lora_A"].float()
    torch.testing.assert_close(ours[name], base[name] + delta)


def test_a_missing_or_corrupt_adapter_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Named by file (and tensor), with how to remake it; raised before any model conversion."""
    from safetensors.torch import save_file

    monkeypatch.setenv("ASCL_DATA_HOME", str(tmp_path / "home"))
    missing = tmp_path / "gone" / ADAPTER_FILE
    with pytest.raises(InputError, match=rf"{missing}: missing; remake it with `python -m ascl_data.embedded_adapter`"):
        adapted_model_path(missing)
    corrupt = tmp_path / ADAPTER_FILE
    corrupt.write_bytes(b"\x00not a safetensors file")
    corrupt.with_suffix(".json").write_text('{"scale": 2.0}')
    with pytest.raises(InputError, match=rf"{corrupt}: not a readable safetensors file"):
        adapted_model_path(corrupt)
    save_file({"model.layers.29.mlp.up_proj.lora_A": torch.zeros(4, 8)}, corrupt)
    corrupt.with_suffix(".json").write_text("{oops")
    with pytest.raises(InputError) as err:
        adapted_model_path(corrupt)
    assert "model.layers.29.mlp.up_proj: needs both lora_A and lora_B" in str(err.value)
    assert f"{corrupt.with_suffix('.json')}: not a JSON object" in str(err.value)
    assert not (tmp_path / "home" / "models").exists()
