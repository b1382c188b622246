"""The embedded teacher's seed adapter: SmolLM2-135M taught the shape of an ASCL trace by a LoRA trained once.

Why: the bare 135M model calls the rule tool when the consult policy makes it, but after reading the rules it
copies the `<tool_response>` block, complies, or runs past max_tokens, so the quickstart held no consulted trace
(benchmarks/README.md, "Quickstart yield"). A LoRA trained on the hand-written seed traces shipped in
`ascl_data/data/seed_traces.jsonl` (consulted refusals of harmful and jailbreak prompts that cite the retrieved rule,
short direct answers to benign, borderline and reasoning prompts; none of them a quickstart prompt) teaches the
format, not the knowledge: the rules still come from the real rule tool at build time.

How it fits a few CPU minutes: the seed conversations are rendered exactly as the build renders them (the
adaptive system prompt, the rule tool's schema, its real results), the head they share (system prompt and tool
schema) is run once, the lower layers once per seed with no gradient, and only the top `layers` layers carry LoRA
and are trained, on the assistant tokens alone (the head's keys and values stay those of the base model). The
merged model is saved next to the converted one under `cache_home()/models`, keyed by the seed file, the rule
book and the settings, made atomically on first use like the GGUF conversion. Training is seeded and runs with
a fixed thread count, so the same inputs give the same weights.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import xxhash
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ascl_data.embedded import EMBEDDED_MODEL_NAME, cache_home, embedded_model_path
from ascl_data.errors import InputError, Problem, validation_problems

SEED_FILE = "seed_traces.jsonl"
RULESET = "default"  # the rule book the seed answers cite; the quickstart's


@dataclass(frozen=True)
class AdapterSettings:
    """How the adapter is trained. Part of the cache key: a change trains a new adapter."""

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


def seed_file() -> Path:
    return Path(str(resources.files("ascl_data") / "data" / SEED_FILE))


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


def adapter_key(settings: AdapterSettings = AdapterSettings(), seeds: Path | None = None) -> str:
    """What the adapter depends on: the seed file's bytes, the rule book (its results are in the traces), the
    settings and the system prompt."""
    from ascl_data.prompts import ADAPTIVE_SYSTEM_PROMPT
    from ascl_data.rulebook import load_ruleset

    ruleset = load_ruleset(RULESET)
    h = xxhash.xxh64()
    h.update((seeds or seed_file()).read_bytes())
    h.update(f"{ruleset.name}@{ruleset.version}|{ADAPTIVE_SYSTEM_PROMPT}|{json.dumps(asdict(settings))}".encode())
    return h.hexdigest()


def adapted_model_path(settings: AdapterSettings = AdapterSettings()) -> Path:
    """The embedded model with the seed adapter merged in, trained on first use (atomically) and cached."""
    target = cache_home() / "models" / f"{EMBEDDED_MODEL_NAME}-seed-{adapter_key(settings)}"
    if (target / "config.json").is_file():
        return target
    base = embedded_model_path()
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        train_adapter(base, tmp, settings)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def train_adapter(base: Path, out: Path, settings: AdapterSettings = AdapterSettings(), seeds: list[Seed] | None = None) -> dict[str, Any]:
    """Train the LoRA on the seed traces (see the module docstring), merge it and save the model to `out`.
    Returns the training log (seeds, tokens, loss per epoch)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ascl_data.prompts import adaptive_system_prompt
    from ascl_data.rule_tool import RuleTool
    from ascl_data.rulebook import load_ruleset

    start = time.perf_counter()
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
                          target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                          layers_to_transform=list(range(first, n_layers)), task_type="CAUSAL_LM")
        peft_model = get_peft_model(model, lora)
        model.model.layers = torch.nn.ModuleList(list(layers)[first:])  # run the top layers only (layer_idx kept)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
        order = random.Random(settings.seed)
        log: dict[str, Any] = {"seeds": len(items), "trained_tokens": sum(len(t) for *_, t in items), "loss": []}
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
                log["loss"].append(round(total / log["trained_tokens"], 4))
        finally:
            model.model.layers = layers
        log["seconds"] = round(time.perf_counter() - start, 1)
        merged = peft_model.merge_and_unload()
        merged.save_pretrained(out)
        tokenizer.save_pretrained(out)
        (out / "seed_adapter.json").write_text(json.dumps({"settings": asdict(settings), **log}, indent=2) + "\n")
        return log
    finally:
        torch.set_num_threads(threads)


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
