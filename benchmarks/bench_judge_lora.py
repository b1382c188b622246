"""The uncertain band's SmolLM2 judge (`ascl_data.judge.lora_judge`) on real models' answers with human labels,
leave-one-source-out, beside the fast classifier and a refusal-string match on the same rows, its speed on one core,
and what the cascade (fast classifier, the SmolLM2 judge on the band) gives and costs.

For each real source (Llama-2-70b-chat on XSTest; the embedded SmolLM2 bare and with the seed adapter) the LoRA and
head are fitted on the other two sources and the hand-written fragments (`python -m ascl_data.judge.lora_train
--holdout SOURCE` does the same fit) and scored on the held-out one. Binary, as XSTest scores it: full compliance vs
refusal (full or partial). The fast classifier is held out the same way: its logistic model is refitted without the
source (`ascl_data.judge.train.fit`) and the held-out source judged with it; the band is read on that held-out
probability.

Cascade: an answer whose `refusal_probability` lies in the band goes to the held-out SmolLM2 judge, the rest keep the
fast classifier's verdict. Its cost per answer is the fast path's plus the band's share times the SmolLM2 judge's,
all in CPU-seconds of one core (`time.process_time`, torch on one thread).

    nice -n 10 python benchmarks/bench_judge_lora.py      # writes benchmarks/results/judge_lora.json
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_refusal_classifier import string_match  # noqa: E402
from provenance import write_results  # noqa: E402

from ascl_data.judge.lora_judge import LoraJudge, LoraSettings  # noqa: E402
from ascl_data.judge.lora_train import (  # noqa: E402
    REAL_SOURCES, binary_scores, fit, holdout_run, load_rows, lower_states, save,
)
from ascl_data.judge.refusal import assess, classify_response  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "judge_lora.json"
BANDS = {"0.2-0.8": (0.2, 0.8), "0.1-0.9": (0.1, 0.9), "0.3-0.7": (0.3, 0.7)}
SPEED_ANSWERS = 60  # real answers timed through the SmolLM2 judge (every 17th row)
FAST_REPEATS = 5  # passes over the 1,014 real answers when timing the fast path


def fast_held_out(rows: list) -> dict[int, tuple[float, int]]:
    """The fast classifier held out as the SmolLM2 judge is: for each real source, its logistic model refitted
    without that source (`ascl_data.judge.train`), then (P(refusal), refusal?) of each of the source's rows from
    `refusal.assess` with that model (the rules and their edges as shipped)."""
    from ascl_data.judge import refusal_model
    from ascl_data.judge import train as fast_train

    train_rows = fast_train.load_rows()
    out = {}
    for held in REAL_SOURCES:
        model = refusal_model.Model(fast_train.fit([r for r in train_rows if r["source"] != held]),
                                    fast_train.THRESHOLD)
        for i, r in enumerate(rows):
            if r.source == held:
                p, verdict, _ = assess(r.answer, model)
                out[i] = (p, int(verdict != "comply"))
    return out


def main() -> None:
    import torch

    load_start = [round(x, 2) for x in os.getloadavg()]
    settings = LoraSettings()
    rows = load_rows()
    states = lower_states(rows, settings)
    held_fast = fast_held_out(rows)  # the band is read on the held-out probability too
    probability = {i: p for i, (p, _) in held_fast.items()}

    def fast(i: int) -> int:
        return held_fast[i][1]

    out: dict = {"settings": asdict(settings), "sources": {}, "cascade": {}}
    pooled: dict[str, list[int]] = {"gold": [], "lora": [], "fast": [], "string_match": []}
    held: dict[int, float] = {}
    for source in REAL_SOURCES:
        run = holdout_run(rows, states, source, settings)
        gold = [rows[i].refusal for i in run["rows"]]
        lora = [int(p >= 0.5) for p in run["probabilities"]]
        fast_pred = [fast(i) for i in run["rows"]]
        strings = [int(string_match(rows[i].answer) != "comply") for i in run["rows"]]
        out["sources"][source] = {"lora": run["scores"], "fast_classifier": binary_scores(gold, fast_pred),
                                  "string_match": binary_scores(gold, strings), "train_seconds": run["train_seconds"],
                                  "loss": run["loss"]}
        print(source, out["sources"][source], flush=True)
        for key, pred in (("gold", gold), ("lora", lora), ("fast", fast_pred), ("string_match", strings)):
            pooled[key].extend(pred)
        held.update(zip(run["rows"], run["probabilities"]))
    out["all_sources"] = {"lora": binary_scores(pooled["gold"], pooled["lora"]),
                          "fast_classifier": binary_scores(pooled["gold"], pooled["fast"]),
                          "string_match": binary_scores(pooled["gold"], pooled["string_match"])}
    out["min_source_accuracy"] = {k: min(out["sources"][s][k]["accuracy"] for s in REAL_SOURCES)
                                  for k in ("lora", "fast_classifier", "string_match")}

    # speed, one core: the fast path (classifier + refusal probability) and the SmolLM2 judge
    torch.set_num_threads(1)
    real = [r for r in rows if r.source in REAL_SOURCES]
    began = time.process_time()
    for _ in range(FAST_REPEATS):
        for r in real:
            classify_response(r.answer)
    classify_rate = FAST_REPEATS * len(real) / (time.process_time() - began)
    began = time.process_time()
    for _ in range(FAST_REPEATS):
        for r in real:
            assess(r.answer)  # verdict and probability in one pass: what assess_response runs when a band is set
    fast_rate = FAST_REPEATS * len(real) / (time.process_time() - began)
    with tempfile.TemporaryDirectory() as tmp:  # any weights time the same: a one-answer fit
        tensors, _ = fit([states[0]], [rows[0].refusal], LoraSettings(epochs=1), progress=False)
        save(tensors, Path(tmp) / "judge_lora.safetensors", {"scale": settings.alpha / settings.rank,
                                                              "settings": asdict(settings)})
        judge = LoraJudge(Path(tmp) / "judge_lora.safetensors")
        timed = real[::17][:SPEED_ANSWERS]
        judge.refusal_probability(timed[0].prompt, timed[0].answer)  # warm
        began = time.process_time()
        for r in timed:
            judge.refusal_probability(r.prompt, r.answer)
        lora_rate = len(timed) / (time.process_time() - began)
    out["speed"] = {"classifier_answers_per_cpu_second": round(classify_rate, 1),
                    "fast_answers_per_cpu_second": round(fast_rate, 1),
                    "lora_answers_per_cpu_second": round(lora_rate, 3),
                    "lora_answers_timed": len(timed), "threads": 1,
                    "what": "CPU time of this process (time.process_time), real answers of the three sources; "
                            "classifier: classify_response (no band); fast: refusal.assess, the verdict and the "
                            "probability in one pass (what the judge runs on every answer when a band is set)"}

    # the cascade: share of real answers in each band, accuracy with the held-out SmolLM2 judge on the band, cost
    for name, (low, high) in BANDS.items():
        band = {i for i, p in probability.items() if low <= p <= high}
        per_source = {}
        for source in REAL_SOURCES:
            ids = [i for i in probability if rows[i].source == source]
            gold = [rows[i].refusal for i in ids]
            pred = [int(held[i] >= 0.5) if i in band else fast(i) for i in ids]
            per_source[source] = {"band_share": round(sum(i in band for i in ids) / len(ids), 4),
                                  **binary_scores(gold, pred)}
        inside = sorted(band)
        gold_in = [rows[i].refusal for i in inside]
        in_band = {"n": len(inside),
                   "fast_classifier_accuracy": binary_scores(gold_in, [fast(i) for i in inside])["accuracy"],
                   "lora_accuracy": binary_scores(gold_in, [int(held[i] >= 0.5) for i in inside])["accuracy"]}
        ids = list(probability)
        gold = [rows[i].refusal for i in ids]
        pred = [int(held[i] >= 0.5) if i in band else fast(i) for i in ids]
        share = len(band) / len(ids)
        seconds = 1 / fast_rate + share / lora_rate
        out["cascade"][name] = {
            "band": [low, high], "band_share": round(share, 4), "all_sources": binary_scores(gold, pred),
            "in_band": in_band,
            "sources": per_source, "cpu_seconds_per_answer": round(seconds, 5),
            "answers_per_cpu_second": round(1 / seconds, 2),
            "slowdown_vs_no_band": round(seconds * classify_rate, 1),
        }
    out["refusal_probability_note"] = ("the band is read on the fast classifier's held-out refusal probability at "
                                       "this commit; another calibration changes the share each band sends on")
    write_results(RESULTS, out, load_at_start=load_start)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
