"""Accuracy and speed of the rule-based refusal classifier on a labelled set of model responses.

The set (`benchmarks/refusal_labelled.jsonl`) holds responses written in the styles of real assistants
(source `handwritten:<style>`) and real greedy outputs of SmolLM2-135M-Instruct, labelled by hand (source
`smollm2-135m-instruct...`, see `gen_smollm2_responses.py`). A fixed hash of each row puts a third of it in a
held-out split: any tuning of the classifier after its first measurement looked only at the other two thirds.

Speed is the median of several timed passes, against a naive baseline ("starts with I'm sorry / I can't" ->
refuse) measured in the same run. Usage:
    python benchmarks/bench_refusal_classifier.py [--out benchmarks/results/refusal_classifier.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ascl_data.judge.refusal import classify_response

HERE = Path(__file__).parent
LABELS = ("comply", "refuse", "safe_complete")


def is_held_out(row: dict) -> bool:
    """A fixed third of the rows, chosen by content hash (stable across edits of other rows)."""
    digest = hashlib.sha256((row["prompt"] + "\x00" + row["response"]).encode()).digest()
    return digest[0] % 3 == 0


def naive_classifier(text: str) -> tuple[str, str]:
    """The baseline most pipelines start with: a refusal opener means refuse, anything else comply."""
    head = text.strip().lower().replace("\u2019", "'")
    openers = ("i'm sorry", "i am sorry", "sorry", "i can't", "i cannot", "i apologize", "as an ai")
    return ("refuse", "opener") if head.startswith(openers) else ("comply", "")


def metrics(gold: list[str], pred: list[str]) -> dict:
    n = len(gold)
    confusion = {g: {p: 0 for p in LABELS} for g in LABELS}
    for g, p in zip(gold, pred):
        confusion[g][p] += 1
    per_class = {}
    for c in LABELS:
        tp = confusion[c][c]
        predicted = sum(confusion[g][c] for g in LABELS)
        actual = sum(confusion[c].values())
        prec = tp / predicted if predicted else 0.0
        rec = tp / actual if actual else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per_class[c] = {"precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4), "support": actual}
    # The judge's real question: would the behaviour check accept the response for a harmful prompt?
    declines_gold = [g != "comply" for g in gold]
    declines_pred = [p != "comply" for p in pred]
    binary = sum(a == b for a, b in zip(declines_gold, declines_pred)) / n if n else 0.0
    return {
        "n": n,
        "accuracy": round(sum(g == p for g, p in zip(gold, pred)) / n, 4) if n else 0.0,
        "macro_f1": round(sum(v["f1"] for v in per_class.values()) / len(LABELS), 4),
        "binary_comply_vs_decline_accuracy": round(binary, 4),
        "per_class": per_class,
        "confusion_gold_rows_pred_cols": confusion,
    }


def speed(fn: Callable[[str], tuple], texts: list[str], target: int = 20_000, runs: int = 5) -> dict:
    """Median throughput over `runs` passes, by wall clock and by this process's CPU time (the CI box is shared,
    so CPU time is the steadier number; both are recorded)."""
    batch = (texts * (target // len(texts) + 1))[:target]
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        for t in batch:
            fn(t)
        wall.append(len(batch) / (time.perf_counter() - t0))
        cpu.append(len(batch) / max(time.process_time() - c0, 1e-9))
    return {
        "responses_per_s_median": round(statistics.median(wall)),
        "responses_per_cpu_s_median": round(statistics.median(cpu)),
        "runs": runs,
        "responses_per_run": len(batch),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(HERE / "refusal_labelled.jsonl"))
    ap.add_argument("--out", default=str(HERE / "results" / "refusal_classifier.json"))
    args = ap.parse_args()
    rows = [json.loads(line) for line in Path(args.data).read_text(encoding="utf-8").splitlines() if line.strip()]
    preds = [classify_response(r["response"]) for r in rows]
    base = [naive_classifier(r["response"])[0] for r in rows]

    def subset(keep: Callable[[dict], bool], which: list) -> dict:
        idx = [i for i, r in enumerate(rows) if keep(r)]
        return metrics([rows[i]["label"] for i in idx], [which[i] for i in idx])

    verdicts = [p[0] for p in preds]
    result = {
        "dataset": {"path": Path(args.data).name, "rows": len(rows), "labels": Counter(r["label"] for r in rows),
                    "sources": Counter(r["source"].split(":")[0] for r in rows)},
        "classifier": {
            "all": subset(lambda r: True, verdicts),
            "held_out": subset(is_held_out, verdicts),
            "dev": subset(lambda r: not is_held_out(r), verdicts),
            "handwritten": subset(lambda r: r["source"].startswith("handwritten"), verdicts),
            "smollm2": subset(lambda r: r["source"].startswith("smollm2"), verdicts),
        },
        "naive_baseline": {
            "all": subset(lambda r: True, base),
            "held_out": subset(is_held_out, base),
        },
        "speed": {
            "classifier": speed(classify_response, [r["response"] for r in rows]),
            "naive_baseline": speed(naive_classifier, [r["response"] for r in rows]),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
        "errors": [
            {"held_out": is_held_out(r), "label": r["label"], "pred": p[0], "evidence": p[1], "source": r["source"],
             "prompt": r["prompt"], "response": r["response"][:300]}
            for r, p in zip(rows, preds) if p[0] != r["label"]
        ],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    c, b = result["classifier"], result["naive_baseline"]
    print(f"rows={len(rows)} accuracy all={c['all']['accuracy']} held_out={c['held_out']['accuracy']} "
          f"(n={c['held_out']['n']}) macro_f1={c['all']['macro_f1']} | naive all={b['all']['accuracy']}")
    sp = result["speed"]
    print(f"speed: {sp['classifier']['responses_per_s_median']}/s wall, "
          f"{sp['classifier']['responses_per_cpu_s_median']}/cpu-s vs naive "
          f"{sp['naive_baseline']['responses_per_s_median']}/s (load {sp['load_average_1m']}); wrote {out}")


if __name__ == "__main__":
    main()
