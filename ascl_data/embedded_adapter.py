"""The embedded teacher's seed adapter: SmolLM2-135M taught the shape of an ASCL trace by a LoRA shipped as data.

Why: the bare 135M model calls the rule tool when the consult policy makes it, but after reading the rules it
copies the `<tool_response>` block, complies, or runs past max_tokens, so the quickstart held no consulted trace
(benchmarks/quickstart_yield.py, docs/benchmarks.md "Quickstart"). A LoRA trained on the hand-written seed traces in
`ascl_data/data/seed_traces.jsonl` (consulted refusals of harmful and jailbreak prompts that cite the retrieved rule,
short direct answers to benign, borderline and reasoning prompts; none of them a quickstart prompt) teaches the
format, not the knowledge: the rules still come from the real rule tool at build time.

Shipped, not trained at setup: training costs minutes of CPU, more than the quickstart's budget, so it ran once
(`python -m ascl_data.embedded_adapter`, the one way to remake it) and only its LoRA factors ship, as
`data/seed_adapter.safetensors` (A and B per module, half precision when that leaves the greedy answers on the seeds
unchanged) with `data/seed_adapter.json` (what it was trained on and how). At run time `adapted_model_path` merges
them into the converted model with plain torch (W += scale * B @ A; peft is needed only to train) and caches the
merged model next to the converted one, keyed by the adapter file's sha256.

How training fits a few CPU minutes: the seed conversations are rendered exactly as the build renders them (the
adaptive system prompt, the rule tool's schema, its real results), the head they share (system prompt and tool
schema) is run once, the lower layers once per seed with no gradient, and only the top `layers` layers carry LoRA
and are trained, on the assistant tokens alone (the head's keys and values stay those of the base model). Training
is seeded and runs with a fixed thread count, so the same inputs on the same CPU give the same weights (bit for bit);
another CPU's kernels change the last bits (remade on an AVX-512 machine, the factors shipped from an AVX2 one
differed by up to 0.004 with the same losses), which the greedy check below shows leaves the answers unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from tqdm.auto import tqdm

from ascl_data.embedded import (EMBEDDED_MODEL_NAME, GGUF_FILE, cache_home, embedded_model_path, gguf_dir,
                                 write_atomically)
from ascl_data.errors import InputError, Problem, validation_problems

SEED_FILE = "seed_traces.jsonl"
ADAPTER_FILE = "seed_adapter.safetensors"  # its manifest: the same name with .json
RULESET = "default"  # the rule book the seed answers cite; the quickstart's
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
RETRAIN = "remake it with `python -m ascl_data.embedded_adapter` or reinstall ascl-data"


@dataclass(frozen=True)
class AdapterSettings:
    """How the adapter is trained (recorded in its manifest)."""

    layers: int = 6  # top decoder layers that carry LoRA (the rest stay frozen and run once per seed)
    rank: int = 16
    alpha: int = 32
    lr: float = 2e-3
    epochs: int = 4
    batch: int = 8  # seeds per optimizer step
    seed: int = 0
    threads: int = 2  # fixed, so that float sums (and the weights) do not depend on the machine's core count


class Seed(BaseModel):
    """One hand-written seed trace: a consulted one gives the tool `query` (top_k 1: the answer cites that rule)."""

    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1)
    kind: Literal["harmful", "jailbreak", "borderline", "benign", "reasoning"]
    category: str | None = None
    query: str | None = None
    reference: str | None = None
    answer: str = Field(min_length=1)

    @model_validator(mode="after")
    def _shape(self) -> Seed:
        if self.kind == "reasoning" and (self.query is not None or not self.reference):
            raise ValueError("a reasoning seed has a reference and no query (no tool is offered for reasoning)")
        return self


def data_file(name: str) -> Path:
    return Path(str(resources.files("ascl_data") / "data" / name))


def seed_file() -> Path:
    return data_file(SEED_FILE)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def training_inputs() -> dict[str, str]:
    """What the shipped adapter was trained on: the seed file, the base model's GGUF, the rule book (its results
    are in the traces) and the system prompt, recorded in its manifest. A test fails when the seeds or the GGUF no
    longer match it."""
    from ascl_data.prompts import adaptive_system_prompt
    from ascl_data.rulebook import load_ruleset

    ruleset = load_ruleset(RULESET)
    return {
        "seed_traces_sha256": sha256_file(seed_file()),
        "gguf_file": GGUF_FILE,
        "gguf_sha256": sha256_file(gguf_dir() / GGUF_FILE),
        "ruleset": f"{ruleset.name}@{ruleset.version}#{ruleset.fingerprint()}",
        "system_prompt_sha256": hashlib.sha256(adaptive_system_prompt(ruleset).encode()).hexdigest(),
    }


def load_seeds(path: Path | None = None) -> list[Seed]:
    """The seed traces, every bad line named (file:line, field) in one error."""
    from ascl_data.sources.local import jsonl_rows

    path = path or seed_file()
    seeds, problems = [], []
    for where, row in jsonl_rows(path):
        if isinstance(row, Problem):
            problems.append(row)
            continue
        try:
            seeds.append(Seed.model_validate(row))
        except ValidationError as exc:
            problems.extend(validation_problems(exc, where))
    if problems or not seeds:
        raise InputError(f"seed traces {path}", problems or [Problem(str(path), "", "no seed traces")])
    return seeds


def seed_messages(seed: Seed, rule_tool: Any, system_prompt: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(messages, tools) of a seed as the adaptive generator renders a trace: reasoning seeds get no tool (the
    quickstart forbids it for them), consulted ones call the real rule tool and get its real result."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}, {"role": "user", "content": seed.prompt}]
    tools = None if seed.kind == "reasoning" else [rule_tool.schema()]
    if seed.query is not None:
        arguments = json.dumps({"query": seed.query, "top_k": 1})
        content, _ = rule_tool.call_json(arguments)
        call = {"id": "call_0", "type": "function", "function": {"name": rule_tool.name, "arguments": arguments}}
        messages += [{"role": "assistant", "content": None, "tool_calls": [call]},
                     {"role": "tool", "tool_call_id": "call_0", "name": rule_tool.name, "content": content}]
    messages.append({"role": "assistant", "content": seed.answer})
    return messages, tools


def tokenize_with_mask(tokenizer: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> tuple[list[int], list[bool]]:
    """Token ids of a conversation and which of them the model is trained to write (assistant turns through their
    end token). Each turn is tokenized after the generation prompt before it, as a backend sees it at build time."""
    from ascl_data.chat_format import to_hf_convention
    from ascl_data.toolcalls import END_MARKERS

    hf = to_hf_convention(messages)
    ids: list[int] = []
    mask: list[bool] = []
    done = ""
    for i, message in enumerate(hf):
        if message["role"] != "assistant":
            continue
        prompt = tokenizer.apply_chat_template(hf[:i], tools=tools, add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(hf[: i + 1], tools=tools, tokenize=False)
        turn = full[len(prompt):]
        end = min((turn.index(m) + len(m) for m in END_MARKERS if m in turn), default=len(turn))
        for text, learn in ((prompt[len(done):], False), (turn[:end], True)):
            piece = tokenizer(text, add_special_tokens=False)["input_ids"]
            ids += piece
            mask += [learn] * len(piece)
        done = prompt + turn[:end]
    return ids, mask


def load_adapter(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The LoRA factors in `path` and its manifest (`path` with .json). A missing or corrupt file, or a factor
    without its pair, is an `InputError` naming the file and the tensor."""
    from ascl_data.weights import read_weights

    tensors, manifest, problems = read_weights(path, RETRAIN)
    if manifest and not isinstance(manifest.get("scale"), (int, float)):
        problems.append(Problem(str(path.with_suffix(".json")), "scale", "missing or not a number"))
    modules = {name.rsplit(".lora_", 1)[0] for name in tensors}
    for module in sorted(modules):
        a, b = tensors.get(f"{module}.lora_A"), tensors.get(f"{module}.lora_B")
        if a is None or b is None:
            problems.append(Problem(str(path), module, "needs both lora_A and lora_B"))
        elif a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            problems.append(Problem(str(path), module, f"lora_A {tuple(a.shape)} and lora_B {tuple(b.shape)} do not "
                                                       "multiply (rank x in, out x rank)"))
    if not problems and not modules:
        problems.append(Problem(str(path), "", "holds no LoRA factors"))
    if problems:
        raise InputError("seed adapter", problems)
    return tensors, manifest


def merge_lora(weights: dict[str, Any], tensors: dict[str, Any], scale: float, where: str = "seed adapter") -> None:
    """W += scale * B @ A for every adapted module, in place, computed in float32: what peft's merge does, without
    peft. A module the weights lack or whose shape differs is an `InputError`."""
    import torch

    problems = []
    for name in sorted(n for n in tensors if n.endswith(".lora_A")):
        module = name.removesuffix(".lora_A")
        weight = weights.get(f"{module}.weight")
        a, b = tensors[name].float(), tensors[f"{module}.lora_B"].float()
        if weight is None or weight.shape != (b.shape[0], a.shape[1]):
            found = "absent" if weight is None else f"shaped {tuple(weight.shape)}"
            problems.append(Problem(where, module, f"the base model's {module}.weight is {found}, the adapter "
                                                   f"needs {(b.shape[0], a.shape[1])}"))
            continue
        with torch.no_grad():
            weight.copy_((weight.float() + scale * (b @ a)).to(weight.dtype))
    if problems:
        raise InputError("seed adapter", problems)


def merge_adapter_files(base: Path, tensors: dict[str, Any], scale: float, out: Path, where: str) -> None:
    """Write `base` (a Hugging Face folder of safetensors) to `out` with the LoRA `tensors` merged into it."""
    from safetensors.torch import load_file, save_file

    pending = dict(tensors)
    out.mkdir(parents=True, exist_ok=True)
    for item in sorted(base.iterdir()):
        if item.suffix != ".safetensors":
            shutil.copy2(item, out / item.name)
            continue
        weights = load_file(item)
        here = {n: t for n, t in pending.items() if f"{n.rsplit('.lora_', 1)[0]}.weight" in weights}
        merge_lora(weights, here, scale, where)
        for name in here:
            del pending[name]
        save_file(weights, out / item.name, metadata={"format": "pt"})
    merge_lora({}, pending, scale, where)  # factors no shard had a weight for: named in an error


def adapter_description(adapter: Path | None = None) -> str:
    """What the seed adapter is, for the card: the teacher's answers were shaped by it, so a reader must know."""
    adapter = adapter or data_file(ADAPTER_FILE)
    manifest = json.loads(adapter.with_suffix(".json").read_text())
    settings = manifest["settings"]
    return (f"the package's seed adapter merged in (a rank-{settings['rank']} LoRA on the top {settings['layers']} "
            f"layers, trained on {manifest['seeds']} hand-written seed traces; `{adapter.name}`, sha256 "
            f"`{sha256_file(adapter)[:16]}`): it teaches the 135M model the trace's shape, not good answers")


def adapted_model_path(adapter: Path | None = None) -> Path:
    """The embedded model with the shipped seed adapter merged in, made on first use (atomically) and cached under
    `cache_home()/models`, keyed by the adapter file's sha256."""
    adapter = adapter or data_file(ADAPTER_FILE)
    try:
        key = sha256_file(adapter)
    except FileNotFoundError:
        raise InputError("seed adapter", [Problem(str(adapter), "", f"missing; {RETRAIN}")]) from None
    target = cache_home() / "models" / f"{EMBEDDED_MODEL_NAME}-seed-{key[:16]}"
    if (target / "config.json").is_file():
        return target
    tensors, manifest = load_adapter(adapter)  # a corrupt adapter fails before the model conversion
    base = embedded_model_path()
    return write_atomically(target, lambda tmp: merge_adapter_files(base, tensors, float(manifest["scale"]), tmp,
                                                                    str(adapter)))


def train_adapter(base: Path, settings: AdapterSettings = AdapterSettings(),
                  seeds: list[Seed] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train the LoRA on the seed traces (see the module docstring). Returns its factors (`lora_tensors`, float32)
    and the training log (seeds, tokens, loss per epoch, seconds)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ascl_data.prompts import adaptive_system_prompt
    from ascl_data.rule_tool import RuleTool
    from ascl_data.rulebook import load_ruleset

    began = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    try:
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        model.eval()  # no dropout: the same inputs give the same weights
        ruleset = load_ruleset(RULESET)
        rule_tool, system = RuleTool(ruleset), adaptive_system_prompt(ruleset)
        examples = []
        for seed in seeds or load_seeds():
            messages, tools = seed_messages(seed, rule_tool, system)
            examples.append((tools is None, *tokenize_with_mask(tokenizer, messages, tools)))
        head_of = {group: _common_prefix([(ids, mask) for g, ids, mask in examples if g == group]) for group, *_ in examples}
        n_layers = model.config.num_hidden_layers
        first = n_layers - min(settings.layers, n_layers)

        # The shared heads (one with the tool schema, one without) and each seed's input to the top layers.
        heads: dict[tuple[int, ...], Any] = {}
        items = []
        layers, norm = model.model.layers, model.model.norm
        with torch.no_grad():
            for head in set(head_of.values()):
                heads[head] = model.model(input_ids=torch.tensor([head]), use_cache=True).cache
            # the lower layers only, without the final norm: their output is the top layers' input
            model.model.layers, model.model.norm = torch.nn.ModuleList(list(layers)[:first]), torch.nn.Identity()
            try:
                for group, ids, mask in examples:
                    head = head_of[group]
                    tail = ids[len(head):]
                    states = model.model(input_ids=torch.tensor([tail]), cache=heads[head], use_cache=True).last_hidden_state
                    _truncate(heads[head], len(head))
                    learn = mask[len(head):]
                    positions = [p for p in range(len(tail) - 1) if learn[p + 1]]
                    targets = torch.tensor([tail[p + 1] for p in positions])
                    items.append((head, states, torch.tensor(positions), targets))
            finally:
                model.model.layers, model.model.norm = layers, norm

        lora = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=0.0,
                          target_modules=list(TARGET_MODULES),
                          layers_to_transform=list(range(first, n_layers)), task_type="CAUSAL_LM")
        peft_model = get_peft_model(model, lora)
        model.model.layers = torch.nn.ModuleList(list(layers)[first:])  # run the top layers only (layer_idx kept)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
        order = random.Random(settings.seed)
        log: dict[str, Any] = {"seeds": len(items), "trained_tokens": sum(len(t) for *_, t in items), "loss": []}
        steps = settings.epochs * -(-len(items) // settings.batch)
        bar = tqdm(total=steps, desc="training the seed adapter", unit="step")
        try:
            for _ in range(settings.epochs):
                shuffled = order.sample(items, len(items))
                total = 0.0
                for start in range(0, len(shuffled), settings.batch):
                    batch = shuffled[start : start + settings.batch]
                    n_targets = sum(len(t) for *_, t in batch)
                    for head, states, positions, targets in batch:
                        cache = heads[head]
                        hidden = model.model(inputs_embeds=states, cache=cache, use_cache=True).last_hidden_state
                        _truncate(cache, len(head))
                        logits = model.lm_head(hidden[0, positions])
                        loss = torch.nn.functional.cross_entropy(logits, targets, reduction="sum") / n_targets
                        loss.backward()
                        total += float(loss.detach()) * n_targets
                    opt.step()
                    opt.zero_grad()
                    bar.update()
                log["loss"].append(round(total / log["trained_tokens"], 4))
                bar.set_postfix(loss=log["loss"][-1])
        finally:
            bar.close()
            model.model.layers = layers
        log["seconds"] = round(time.perf_counter() - began, 1)
        return lora_tensors(peft_model), log
    finally:
        torch.set_num_threads(threads)


def save_adapter(tensors: dict[str, Any], path: Path, manifest: dict[str, Any], dtype: str) -> None:
    """Write the LoRA factors, rounded to `dtype`, to `path` and the manifest beside it (`path` with .json)."""
    import torch
    from safetensors.torch import save_file

    save_file({n: t.to(getattr(torch, dtype)).contiguous() for n, t in sorted(tensors.items())}, path)
    path.with_suffix(".json").write_text(json.dumps({**manifest, "dtype": dtype}, indent=2) + "\n", encoding="utf-8")


def greedy_check(base: Path, tensors: dict[str, Any], scale: float, dtypes: tuple[str, ...] = ("float16", "bfloat16"),
                 seeds: list[Seed] | None = None, max_tokens: int = 96) -> dict[str, int]:
    """Whether storing the factors in a half-precision `dtype` changes what the merged model says: the greedy
    answer to every assistant turn of every seed (its conversation before the turn as the prompt, up to
    `max_tokens`, the quickstart's budget) of the model merged with the float32 factors, then, per `dtype`, how many
    of those answers the model merged with the rounded factors gives too (teacher-forced: the same argmax at every
    step is the same greedy answer). Returns {"turns": n, dtype: unchanged answers, ...}."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ascl_data.chat_format import to_hf_convention
    from ascl_data.prompts import adaptive_system_prompt
    from ascl_data.rule_tool import RuleTool
    from ascl_data.rulebook import load_ruleset

    tokenizer = AutoTokenizer.from_pretrained(base)
    stops = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")}
    ruleset = load_ruleset(RULESET)
    rule_tool, system = RuleTool(ruleset), adaptive_system_prompt(ruleset)
    prompts: list[tuple[bool, list[int]]] = []
    for seed in seeds or load_seeds():
        messages, tools = seed_messages(seed, rule_tool, system)
        hf = to_hf_convention(messages)
        for i, message in enumerate(hf):
            if message["role"] == "assistant":
                text = tokenizer.apply_chat_template(hf[:i], tools=tools, add_generation_prompt=True, tokenize=False)
                prompts.append((tools is None, tokenizer(text, add_special_tokens=False)["input_ids"]))
    heads = {g: os.path.commonprefix([ids for h, ids in prompts if h == g]) for g, _ in prompts}
    heads = {g: head[: len(head) - 1] for g, head in heads.items()}  # one short: every tail is non-empty

    def merged(dtype: str) -> Any:
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
        rounded = {n: t.to(getattr(torch, dtype)) for n, t in tensors.items()}
        merge_lora(model.state_dict(), rounded, scale)
        return model

    def head_caches(model: Any) -> dict[bool, Any]:
        return {g: model(input_ids=torch.tensor([head]), use_cache=True).cache for g, head in heads.items()}

    answers = []
    result = {"turns": len(prompts)}
    with torch.no_grad():
        model = merged("float32")
        caches = head_caches(model)
        for group, ids in tqdm(prompts, desc="greedy answers (float32 factors)", unit="turn"):
            cache, tail, answer = caches[group], ids[len(heads[group]):], []
            logits = model(input_ids=torch.tensor([tail]), cache=cache, use_cache=True).logits[0, -1]
            while len(answer) < max_tokens:
                answer.append(int(logits.argmax()))
                if answer[-1] in stops:
                    break
                logits = model(input_ids=torch.tensor([answer[-1:]]), cache=cache, use_cache=True).logits[0, -1]
            _truncate(cache, len(heads[group]))
            answers.append(answer)
        for dtype in dtypes:
            model = merged(dtype)
            caches = head_caches(model)
            same = 0
            for (group, ids), answer in tqdm(list(zip(prompts, answers)), desc=f"same answers in {dtype}?", unit="turn"):
                tail = ids[len(heads[group]):]
                forced = torch.tensor([tail + answer[:-1]])
                logits = model(input_ids=forced, cache=caches[group], use_cache=True).logits[0]
                _truncate(caches[group], len(heads[group]))
                same += logits[len(tail) - 1 :].argmax(-1).tolist() == answer
            result[dtype] = same
    return result


def lora_tensors(peft_model: Any) -> dict[str, Any]:
    """A peft model's LoRA factors by the module they adapt: `model.layers.24.self_attn.q_proj.lora_A` (rank x in)
    and `...lora_B` (out x rank), float32."""
    out = {}
    for name, param in peft_model.named_parameters():
        if ".lora_A." in name or ".lora_B." in name:
            module, _, rest = name.removeprefix("base_model.model.").partition(".lora_")
            out[f"{module}.lora_{rest.split('.')[0]}"] = param.detach().float().contiguous().clone()
    return out


def _common_prefix(examples: list[tuple[list[int], list[bool]]]) -> tuple[int, ...]:
    """The token prefix all `examples` share (the system prompt and tool schema), cut before the first trained token
    of any of them and one token short, so that every tail is non-empty."""
    first = min(mask.index(True) for _, mask in examples)
    ids = examples[0][0]
    k = 0
    while k < first and all(other[k] == ids[k] for other, _ in examples):
        k += 1
    return tuple(ids[: max(k - 1, 0)])


def _truncate(cache: Any, length: int) -> None:
    """Cut every layer of a KV cache back to the head's `length` tokens (only the layers that ran grew); what is
    left is the base model's head, outside any autograd graph."""
    for layer in cache.layers:
        if layer.get_seq_length() > length:
            layer.keys, layer.values = layer.keys[..., :length, :].detach(), layer.values[..., :length, :].detach()


def main(argv: list[str] | None = None) -> None:
    """Remake the shipped adapter: train it on the seeds, pick the smallest storage dtype that leaves the greedy
    answers unchanged, and write `seed_adapter.safetensors` and its manifest (into ascl_data/data by default)."""
    ap = argparse.ArgumentParser(prog="python -m ascl_data.embedded_adapter", description=main.__doc__)
    ap.add_argument("--out", type=Path, default=data_file(ADAPTER_FILE).parent, help="folder to write the two files to")
    args = ap.parse_args(argv)
    settings = AdapterSettings()
    base = embedded_model_path()
    tensors, log = train_adapter(base, settings)
    scale = settings.alpha / settings.rank
    check = greedy_check(base, tensors, scale)
    dtype = next((d for d in ("float16", "bfloat16") if check[d] == check["turns"]), "float32")
    manifest = {**training_inputs(), "settings": asdict(settings), "target_modules": list(TARGET_MODULES),
                "scale": scale, "greedy_check": check, **log}
    path = args.out / ADAPTER_FILE
    save_adapter(tensors, path, manifest, dtype)
    print(f"{path} ({path.stat().st_size} bytes, {dtype}; greedy answers unchanged: {check}); loss {log['loss']}, "
          f"{log['seconds']} s")


if __name__ == "__main__":
    main()
