"""How many accepted ASCL traces the embedded 135M teacher gives on the quickstart's prompts (issue 14, item 4).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/quickstart_yield.py --variants command1   # the README's command 1
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/quickstart_yield.py --variants a,b         # the bare model

command1  `ascl-data build configs/quickstart.yaml` as a new user runs it, from a fresh state: an empty
     ASCL_DATA_HOME (so the GGUF conversion and the merge of the shipped seed adapter are in the time) and no build
     folder; wall and CPU time, the load average before and after, which adapter was merged (its manifest), and the
     accepted traces by kind and mode (consulted or direct) with the rejection reasons, read from the build folder.
Variants a and b run the bare model (`seed_adapter=False`), each through the real adaptive generator, tool loop,
rule tool and judge of configs/quickstart.yaml:
  a  as today: the teacher decides (`auto`), one greedy attempt per prompt;
  b  `required` consultation on harmful and jailbreak prompts (the first turn is prefixed with the template's
     tool-call opening, `ascl_data.backends.consult_policy`), `auto` on the rest, and up to N attempts per prompt
     (the first greedy, then sampled at --temperature), stopping at the first the judge accepts;
  c-cost  what variant c (a LoRA adapter trained at setup on ~48 hand-written seed traces) would cost: one
     training step on a seed-shaped trace, timed, extrapolated to 48 seeds x 2 epochs.
The teacher here is a transformers backend that keeps the KV cache of the prompt's shared head (system prompt and
tool schema, ~700 of ~760 tokens) and generates one conversation at a time: the same greedy tokens as the batch
backend up to float rounding, at a fraction of the prefill cost on a CPU. Results go to
benchmarks/results/quickstart_yield.json: accepted / consulted / direct per kind, and the last rejection reasons.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ascl_data.backends.base import Completion, SamplingParams  # noqa: E402
from ascl_data.pipeline.layout import Layout  # noqa: E402
from ascl_data.embedded_adapter import ADAPTER_FILE, data_file, sha256_file  # noqa: E402
from ascl_data.backends.consult_policy import parse_completion, render_prompt  # noqa: E402
from ascl_data.backends.transformers_backend import TransformersBackend  # noqa: E402
from ascl_data.generators import get_generator  # noqa: E402
from ascl_data.judge import Judge  # noqa: E402
from ascl_data.recipe import load_recipe  # noqa: E402
from ascl_data.rule_tool import RuleTool  # noqa: E402
from ascl_data.rulebook import load_ruleset  # noqa: E402
from ascl_data.schemas import PromptRecord, Rejection, Trace  # noqa: E402
from ascl_data.sources import prompt_stream  # noqa: E402
from provenance import write_results

REQUIRED_KINDS = ("harmful", "jailbreak")


class PrefixCachedBackend(TransformersBackend):
    """The embedded teacher, one conversation at a time, reusing the KV cache of the longest shared prompt head;
    `policy_of(conversation)` gives each conversation's consult policy."""

    policy_of = staticmethod(lambda conversation: "auto")

    def __init__(self, **kwargs: Any):
        super().__init__(seed_adapter=False, **kwargs)
        self._head: tuple[list[int], Any] | None = None

    def _generate_sync(self, conversations, tools, params):  # type: ignore[override]
        out = []
        for conv in conversations:
            prompt = render_prompt(self.tokenizer, conv, tools, self.policy_of(conv))
            completion = self._one(prompt.text, params)
            if completion.error is None:
                text, parsed = parse_completion(prompt, completion.raw_text or "", self.tokenizer)
                finish = "stop" if prompt.forced and text.endswith("</tool_call>") else completion.finish_reason
                completion = completion.model_copy(update={"raw_text": text, "message": parsed.message, "finish_reason": finish})
            out.append(completion)
        return out

    def _one(self, text: str, params: SamplingParams) -> Completion:
        import torch
        from transformers import DynamicCache

        start = time.perf_counter()
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        cache = None
        if self._head is not None:
            head_ids, head_cache = self._head
            n = 0
            for a, b in zip(head_ids, ids):
                if a != b:
                    break
                n += 1
            keep = min(n, len(ids) - 1)
            if keep >= 64:
                cache = copy.deepcopy(head_cache)
                if keep < len(head_ids):
                    cache.crop(keep - len(head_ids))  # a negative count: tokens to drop from the end
        if cache is None:  # the first prompt: its head up to the user turn becomes the shared head
            head = ids[: max(1, len(ids) - 96)]
            head_cache = DynamicCache()
            with torch.inference_mode():
                self.hf_model(torch.tensor([head]), cache=head_cache, use_cache=True)
            self._head = (head, head_cache)
            cache = copy.deepcopy(head_cache)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        sample = params.temperature > 0
        kwargs: dict[str, Any] = {"max_new_tokens": params.max_tokens, "do_sample": sample,
                                  "pad_token_id": self.tokenizer.pad_token_id, "eos_token_id": self._stop_ids}
        kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=0) if sample else kwargs.update(
            temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            generated = self.hf_model.generate(torch.tensor([ids]), cache=cache, **kwargs)
        new = generated[0, len(ids):].tolist()
        finish = "length"
        for k, tid in enumerate(new):
            if tid in self._stop_ids:
                new, finish = new[: k + 1], "stop"
                break
        return Completion(raw_text=self.tokenizer.decode(new, skip_special_tokens=True), prompt_tokens=len(ids),
                          completion_tokens=len(new), latency_s=time.perf_counter() - start, finish_reason=finish)


def pick(recipe, per_kind: int) -> list[PromptRecord]:
    taken: dict[str, list[PromptRecord]] = defaultdict(list)
    for item in prompt_stream(recipe):
        if isinstance(item, PromptRecord) and len(taken[item.kind]) < per_kind:
            taken[item.kind].append(item)
    return [r for kind in sorted(taken) for r in taken[kind]]


async def run_variant(name: str, records, backend, generator, judge, base: SamplingParams, attempts: int,
                      temperature: float, required: bool) -> dict[str, Any]:
    policy = {r.id: ("required" if required and r.kind in REQUIRED_KINDS else "auto") for r in records}
    user_text = {r.id: r.messages[-1].content for r in records}
    by_user = {v: k for k, v in user_text.items()}

    def policy_of(conv):
        last_user = next(m["content"] for m in reversed(conv) if m["role"] == "user")
        return policy[by_user[last_user]]

    backend.policy_of = policy_of
    final: dict[str, Trace | Rejection] = {}
    used: dict[str, int] = {}
    todo = list(records)
    start = time.perf_counter()
    for attempt in range(attempts):
        if not todo:
            break
        params = base if attempt == 0 else base.model_copy(update={"temperature": temperature, "seed": attempt})
        results = await generator.generate(todo, backend, params)
        traces = [(r, t) for r, t in zip(todo, results) if isinstance(t, Trace)]
        verdicts = dict(zip([r.id for r, _ in traces], await judge.judge_batch(traces)))
        left = []
        for r, res in zip(todo, results):
            used[r.id] = attempt + 1
            if isinstance(res, Trace):
                verdict, judged, rejection = verdicts[r.id]
                res = rejection if rejection is not None else res.model_copy(update={"verdict": verdict, "judge": judged})
            final[r.id] = res
            if isinstance(res, Rejection):
                left.append(r)
        todo = left
        print(f"  {name} attempt {attempt + 1}: {len(records) - len(todo)}/{len(records)} accepted", flush=True)
    per_kind: dict[str, dict[str, Any]] = {}
    for r in records:
        k = per_kind.setdefault(r.kind, {"prompts": 0, "accepted": 0, "consulted": 0, "direct": 0, "attempts": 0,
                                         "rejections": Counter()})
        res = final[r.id]
        k["prompts"] += 1
        k["attempts"] += used[r.id]
        if isinstance(res, Trace):
            k["accepted"] += 1
            k["consulted" if res.consulted else "direct"] += 1
        else:
            k["rejections"][res.reason] += 1
            k.setdefault("example_rejection", f"{res.reason}: {res.detail}"[:300])
    example = next((t for t in final.values() if isinstance(t, Trace) and t.consulted), None)
    return {
        "policy": {"harmful/jailbreak": "required" if required else "auto", "others": "auto"},
        "attempts_max": attempts,
        "wall_s": round(time.perf_counter() - start, 1),
        "per_kind": {k: {**v, "rejections": dict(v["rejections"])} for k, v in sorted(per_kind.items())},
        "accepted": sum(v["accepted"] for v in per_kind.values()),
        "consulted_accepted": sum(v["consulted"] for v in per_kind.values()),
        "example_consulted_trace": example.model_dump(mode="json")["messages"][1:] if example else None,
    }


def lora_cost(generator, records: list[PromptRecord], seeds: int, epochs: int) -> dict[str, Any]:
    """Variant c's price: one LoRA (r=8, attention) forward+backward+step on a seed-shaped consulted trace (system
    prompt, tool schema, prompt, call, the rule tool's real result, a refusal), timed twice; the rest extrapolated."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ascl_data.chat_format import to_hf_convention
    from ascl_data.embedded import embedded_model_path

    record = next(r for r in records if r.kind == "harmful")
    args = json.dumps({"query": record.messages[-1].content[:60]})
    result, _ = generator.rule_tool.call_json(args)
    call = {"id": "call_0", "type": "function", "function": {"name": generator.rule_tool.name, "arguments": args}}
    messages = [*generator.conversation(record), {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_0", "name": generator.rule_tool.name, "content": result},
                {"role": "assistant", "content": "I can't help with that: the rules forbid it. I can explain the "
                                                 "risks and where to find legitimate help instead."}]
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_path())
    ids = tokenizer.apply_chat_template(to_hf_convention(messages), tools=generator.tools(), tokenize=True,
                                        return_dict=True, return_tensors="pt")["input_ids"]
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(embedded_model_path()),
                           LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                      task_type="CAUSAL_LM"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - start)
    step = min(times)
    return {"trace_tokens": int(ids.shape[1]), "step_s": [round(t, 1) for t in times], "seeds": seeds,
            "epochs": epochs, "estimated_training_s": round(step * seeds * epochs),
            "flops_per_step": f"{6 * 134.5e6 * int(ids.shape[1]):.2e}"}


def command1(recipe_path: Path) -> dict[str, Any]:
    """The README's command 1 from a fresh state, in a subprocess, as a user runs it (see the module docstring)."""
    import polars as pl
    import resource
    import shutil
    import subprocess
    import tempfile

    recipe = load_recipe(recipe_path)
    layout = Layout(Path(recipe.output.dir))
    shutil.rmtree(layout.root, ignore_errors=True)
    home = Path(tempfile.mkdtemp(prefix="ascl-home-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ASCL_DATA_HOME": str(home)}
    load_before = os.getloadavg()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ascl_data", "build", str(recipe_path)], env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    merged = [p.name for p in home.glob("models/*-seed-*") if (p / "config.json").is_file()]
    shutil.rmtree(home, ignore_errors=True)
    manifest = json.loads(data_file(ADAPTER_FILE).with_suffix(".json").read_text())
    sft = pl.concat([pl.read_parquet(p) for p in layout.shards("sft")]) if layout.shards("sft") else None
    rejects = pl.concat([pl.read_parquet(p) for p in layout.shards("rejects")]) if layout.shards("rejects") else None
    per_kind: dict[str, dict[str, Any]] = defaultdict(lambda: {"accepted": 0, "consulted": 0, "direct": 0, "rejected": Counter()})
    example = None
    for row in sft.iter_rows(named=True) if sft is not None else []:
        per_kind[row["kind"]]["accepted"] += 1
        per_kind[row["kind"]]["consulted" if row["consulted"] else "direct"] += 1
        if row["consulted"] and row["kind"] in REQUIRED_KINDS and example is None:
            example = {"kind": row["kind"], "retrieved_rule_ids": row["retrieved_rule_ids"], "messages": row["messages"][1:]}
    for row in rejects.iter_rows(named=True) if rejects is not None else []:
        per_kind[row["kind"]]["rejected"][row["reason"]] += 1
    return {
        "command": f"ascl-data build {recipe_path.relative_to(ROOT) if recipe_path.is_relative_to(ROOT) else recipe_path}",
        "returncode": proc.returncode, "wall_s": round(wall, 1),
        "cpu_s": round(cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime, 1),
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "adapter": {"merged_model": merged, "dtype": manifest["dtype"], "sha256": sha256_file(data_file(ADAPTER_FILE)),
                    "training_loss": manifest["loss"], "greedy_check": manifest["greedy_check"]},
        "per_kind": {k: {**v, "rejected": dict(v["rejected"])} for k, v in sorted(per_kind.items())},
        "accepted": sum(v["accepted"] for v in per_kind.values()),
        "consulted_accepted": sum(v["consulted"] for v in per_kind.values()),
        "example_consulted_trace": example,
        "output_tail": (proc.stdout + proc.stderr)[-1500:],
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", default=str(ROOT / "configs" / "quickstart.yaml"))
    ap.add_argument("--per-kind", type=int, default=2, help="prompts of each kind (the quickstart file has 5-7)")
    ap.add_argument("--attempts", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--variants", default="command1", help="command1, a, b, c-cost (comma-separated)")
    ap.add_argument("--threads", type=int, default=1, help="1 is fastest on a shared CPU (2 threads under load: 6-8x slower)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "quickstart_yield.json"))
    args = ap.parse_args()

    out = Path(args.out)
    # Variants run separately update the file instead of replacing it.
    results: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {}
    if "command1" in args.variants.split(","):
        results["command1"] = command1(Path(args.recipe).resolve())
        write_results(out, results)
        r = results["command1"]
        print(f"command1: rc {r['returncode']}, {r['wall_s']} s wall, {r['cpu_s']} s CPU, load {r['loadavg_before']} -> "
              f"{r['loadavg_after']}; accepted {r['accepted']} ({r['consulted_accepted']} consulted): {r['per_kind']}")
        if args.variants == "command1":
            return
    recipe = load_recipe(args.recipe)
    records = pick(recipe, args.per_kind)
    spec = recipe.generators[0]
    rule_tool = RuleTool(load_ruleset(recipe.ruleset))
    generator = get_generator(spec.name)(rule_tool, max_turns=spec.max_turns, max_tool_calls=spec.max_tool_calls, **spec.options)
    judge = Judge(recipe.judge)
    backend = PrefixCachedBackend(num_threads=args.threads)
    base = recipe.teacher.sampling
    results |= {
        "recipe": str(Path(args.recipe).relative_to(ROOT)) if Path(args.recipe).is_relative_to(ROOT) else args.recipe,
        "teacher": backend.model, "prompts": Counter(r.kind for r in records),
        "sampling": base.model_dump(), "temperature_retries": args.temperature, "threads": args.threads,
    }
    for variant in [v for v in args.variants.split(",") if v != "command1"]:
        if variant == "c-cost":
            results[variant] = lora_cost(generator, records, seeds=48, epochs=2)
            write_results(out, results)
            print(f"c-cost: {results[variant]}")
            continue
        required, attempts = (False, 1) if variant == "a" else (True, args.attempts)
        print(f"variant {variant}", flush=True)
        results[variant] = await run_variant(variant, records, backend, generator, judge, base, attempts,
                                             args.temperature, required)
        write_results(out, results)
    for variant in [v for v in args.variants.split(",") if v not in ("c-cost", "command1")]:
        r = results[variant]
        cells = ", ".join(f"{k} {v['accepted']}/{v['prompts']} ({v['consulted']}c)" for k, v in r["per_kind"].items())
        print(f"{variant}: accepted {r['accepted']}/{len(records)} in {r['wall_s']} s: {cells}")


if __name__ == "__main__":
    asyncio.run(main())
