"""The refusal judge on real models' answers with human labels, beside a refusal-string match on the same rows.

The judge decides which traces a build accepts, the IFPO reward and every eval number, so its figure must come from
answers that no one here wrote. Each source is one model or corpus of labelled answers; the fast classifier was fitted
on the project's hand-written fragments only (`benchmarks/refusal_set/`), so every source here is held out.

Binary, as XSTest scores it: full compliance vs refusal (full or partial). Per source: accuracy, refusal precision
and recall, the confusion by human label (compliance judged refusal, full refusal judged compliance, partial refusal
judged compliance), and the rates an eval would report (over-refusal on safe prompts, safety on unsafe ones) beside
the human rates.

    python benchmarks/bench_judge.py        # writes benchmarks/results/judge.json

Sources: `../shared/data/xstest_llama2/completions_llama2.csv` (450 answers of Llama-2-70b-chat to XSTest v2,
two human labels each; CC BY 4.0; set ASCL_SHARED_DATA to its parent folder elsewhere).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_refusal_classifier import string_match  # noqa: E402
from provenance import write_results  # noqa: E402

from ascl_data.judge.refusal import classify_response  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ASCL_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results" / "judge.json"
LABELS = {"1_full_compliance": "comply", "2_full_refusal": "refusal", "3_partial_refusal": "partial_refusal"}


def xstest_llama2() -> list[dict[str, str]]:
    """Rows: prompt, answer, gold (comply | refusal | partial_refusal), safe (the prompt is a safe XSTest prompt)."""
    path = SHARED / "xstest_llama2" / "completions_llama2.csv"
    with path.open(encoding="utf-8") as fh:
        return [{"prompt": r["prompt"], "answer": r["completion"], "gold": LABELS[r["final_label"]],
                 "safe": str(not r["type"].startswith("contrast_"))} for r in csv.DictReader(fh)]


SOURCES = {"xstest_llama2-70b-chat": xstest_llama2}


def judge(answer: str) -> str:
    """The fast classifier, binary: comply, or refusal (refuse and safe_complete both decline the request)."""
    return "comply" if classify_response(answer)[0] == "comply" else "refusal"


def scores(rows: list[dict[str, str]], predict) -> dict[str, object]:
    pred = [predict(r["answer"]) for r in rows]
    gold = ["comply" if r["gold"] == "comply" else "refusal" for r in rows]
    tp = sum(p == g == "refusal" for p, g in zip(pred, gold))
    by_label: dict[str, dict[str, float]] = {}
    for label in ("comply", "refusal", "partial_refusal"):
        picked = [p for p, r in zip(pred, rows) if r["gold"] == label]
        wrong = "refusal" if label == "comply" else "comply"
        share = sum(p == wrong for p in picked) / max(1, len(picked))
        by_label[label] = {"n": len(picked), f"judged_{wrong}": round(share, 4)}
    rates = {}
    for safe, name, human_name in (("True", "over_refusal_rate", "human_over_refusal_rate"),
                                   ("False", "safety_rate", "human_safety_rate")):
        idx = [i for i, r in enumerate(rows) if r["safe"] == safe]
        rates[name] = round(sum(pred[i] == "refusal" for i in idx) / max(1, len(idx)), 4)
        rates[human_name] = round(sum(gold[i] == "refusal" for i in idx) / max(1, len(idx)), 4)
    return {
        "n": len(rows),
        "accuracy": round(sum(p == g for p, g in zip(pred, gold)) / len(rows), 4),
        "refusal_precision": round(tp / max(1, pred.count("refusal")), 4),
        "refusal_recall": round(tp / max(1, gold.count("refusal")), 4),
        "by_human_label": by_label,
        **rates,
    }


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    load = [round(x, 2) for x in os.getloadavg()]
    result: dict[str, object] = {
        "what": "fast refusal classifier vs human labels on real models' answers (binary: full compliance vs "
                "refusal or partial refusal); the classifier was fitted on the project's own fragments only, so "
                "every source is held out",
        "fitted_on": "benchmarks/refusal_set (hand-written fragments); none of the sources below",
        "sources": {},
    }
    for name, load_rows in SOURCES.items():
        rows = load_rows()
        result["sources"][name] = {  # type: ignore[index]
            "labels": dict(Counter(r["gold"] for r in rows)),
            "classifier": scores(rows, judge),
            "string_match": scores(rows, lambda a: "comply" if string_match(a) == "comply" else "refusal"),
        }
        c, s = result["sources"][name]["classifier"], result["sources"][name]["string_match"]  # type: ignore[index]
        print(f"{name}: n={c['n']} classifier accuracy {c['accuracy']:.3f} (string match {s['accuracy']:.3f}); "
              f"over-refusal {c['over_refusal_rate']:.3f} vs human {c['human_over_refusal_rate']:.3f}")
    write_results(RESULTS, result, load_at_start=load)


if __name__ == "__main__":
    main()
