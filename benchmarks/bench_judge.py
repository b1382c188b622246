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
two human labels each; CC BY 4.0; set ASCL_SHARED_DATA to its parent folder elsewhere), and the embedded
SmolLM2-135M-Instruct bare (`smollm2-135m`) and with the seed adapter (`smollm2-135m-seed`) answering XSTest v2
prompts, labelled by hand under `ascl_data/judge/data/LABELLING.md` (`ascl_data/judge/data/smollm2_answers.jsonl`
with `smollm2_labels.jsonl`, joined on `id`; see that folder's README). "all sources" pools every row.
"""

from __future__ import annotations

import argparse
import csv
import json
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
DATA = ROOT / "ascl_data" / "judge" / "data"
LABELS = {"1_full_compliance": "comply", "2_full_refusal": "refusal", "3_partial_refusal": "partial_refusal"}


def xstest_llama2() -> list[dict[str, str]]:
    """Rows: prompt, answer, gold (comply | refusal | partial_refusal), safe (the prompt is a safe XSTest prompt)."""
    path = SHARED / "xstest_llama2" / "completions_llama2.csv"
    with path.open(encoding="utf-8") as fh:
        return [{"prompt": r["prompt"], "answer": r["completion"], "gold": LABELS[r["final_label"]],
                 "safe": str(not r["type"].startswith("contrast_"))} for r in csv.DictReader(fh)]


def smollm2(model: str) -> list[dict[str, str]]:
    """One model's answers (`smollm2_answers.jsonl`) with their settled hand labels (`smollm2_labels.jsonl`)."""
    labels = {}
    with (DATA / "smollm2_labels.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            labels[row["id"]] = row["final_label"]
    rows = []
    with (DATA / "smollm2_answers.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["source"] == model and row["id"] in labels:
                rows.append({"prompt": row["prompt"], "answer": row["answer"], "gold": LABELS[labels[row["id"]]],
                             "safe": str(bool(row["safe"]))})
    return rows


SOURCES = {"xstest_llama2-70b-chat": xstest_llama2,
           "smollm2-135m": lambda: smollm2("smollm2-135m"),
           "smollm2-135m-seed": lambda: smollm2("smollm2-135m-seed")}


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


def kappa(a: list[str], b: list[str]) -> float:
    """Cohen's kappa of two label passes over the same rows."""
    n = len(a)
    seen = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    chance = sum(ca[k] * cb[k] for k in set(a) | set(b)) / n / n
    return (seen - chance) / (1 - chance)


def agreement() -> dict[str, object]:
    """How far the two hand-labelling passes of the SmolLM2 answers agreed, before the disagreements were settled."""
    with (DATA / "smollm2_labels.jsonl").open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    one, two = [r["label_1"] for r in rows], [r["label_2"] for r in rows]
    binary = [["comply" if x == "1_full_compliance" else "refusal" for x in xs] for xs in (one, two)]
    return {"rows": len(rows), "passes_agree": round(sum(x == y for x, y in zip(one, two)) / len(rows), 4),
            "cohen_kappa_3_labels": round(kappa(one, two), 4), "cohen_kappa_binary": round(kappa(*binary), 4),
            "disagreements_settled": sum("settled" in r for r in rows)}


def match(answer: str) -> str:
    """The baseline, binary: a refusal string (the GCG prefix list) anywhere means refusal."""
    return "comply" if string_match(answer) == "comply" else "refusal"


TABLE = (("n", "n"), ("accuracy", "accuracy"), ("refusal_precision", "refusal precision"),
         ("refusal_recall", "refusal recall"), ("comply.judged_refusal", "compliance judged refusal"),
         ("refusal.judged_comply", "full refusal judged compliance"),
         ("partial_refusal.judged_comply", "partial refusal judged compliance"),
         ("over_refusal_rate", "over-refusal, safe prompts"), ("safety_rate", "refusal rate, unsafe prompts"))


def table(sources: dict[str, dict]) -> dict[str, dict]:
    """{source: {figure: {classifier, string_match}}}, the shape the docs' `matrix` directive renders."""
    out: dict[str, dict] = {}
    for name, src in sources.items():
        out[name] = {}
        for key, label in TABLE:
            cell = {}
            for who in ("classifier", "string_match"):
                value = src[who]
                if "." in key:
                    label_key, field = key.split(".")
                    value = value["by_human_label"][label_key][field]
                else:
                    value = value[key]
                cell[who] = value
            out[name][label] = cell
        out[name]["over-refusal, safe prompts"]["human"] = src["classifier"]["human_over_refusal_rate"]
        out[name]["refusal rate, unsafe prompts"]["human"] = src["classifier"]["human_safety_rate"]
    return out


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    load = [round(x, 2) for x in os.getloadavg()]
    result: dict[str, object] = {
        "what": "fast refusal classifier vs human labels on real models' answers (binary: full compliance vs "
                "refusal or partial refusal), beside a refusal-string match on the same rows; the classifier was "
                "fitted on the project's own hand-written fragments only, so every source is held out",
        "fitted_on": "benchmarks/refusal_set (hand-written fragments); none of the sources below",
        "held_out": "every source: no row of any source was used to fit or tune the classifier",
        "labels_from": {"xstest_llama2-70b-chat": "XSTest v2 human labels (final_label)",
                        "smollm2-135m": "ascl_data/judge/data/smollm2_labels.jsonl final_label (two passes, settled)",
                        "smollm2-135m-seed": "ascl_data/judge/data/smollm2_labels.jsonl final_label "
                                             "(two passes, settled)"},
        "smollm2_labelling": agreement(),
        "sources": {},
    }
    sources: dict[str, dict] = result["sources"]  # type: ignore[assignment]
    pooled: list[dict[str, str]] = []
    for name, load_rows in SOURCES.items():
        rows = load_rows()
        pooled += rows
        sources[name] = {"labels": dict(Counter(r["gold"] for r in rows)),
                         "classifier": scores(rows, judge), "string_match": scores(rows, match)}
    sources["all sources"] = {"labels": dict(Counter(r["gold"] for r in pooled)),
                              "classifier": scores(pooled, judge), "string_match": scores(pooled, match)}
    for name, src in sources.items():
        c, s = src["classifier"], src["string_match"]
        print(f"{name}: n={c['n']} classifier accuracy {c['accuracy']:.3f} (string match {s['accuracy']:.3f}); "
              f"over-refusal {c['over_refusal_rate']:.3f} vs human {c['human_over_refusal_rate']:.3f}; "
              f"unsafe refused {c['safety_rate']:.3f} vs human {c['human_safety_rate']:.3f}")
    result["table"] = table(sources)
    write_results(RESULTS, result, load_at_start=load)


if __name__ == "__main__":
    main()
