"""Train the fast judge's model (`refusal_model`) and write its weights as data, with a manifest of what trained them.

    python -m ascl_data.judge.train [--xstest PATH] [--out DIR]

Training data (binary: full compliance vs refusal or partial refusal, as XSTest scores it):

- `data/fragments/*.jsonl`: the project's hand-written fragments (answers in many models' styles, 3-way labels);
- `data/smollm2_answers.jsonl` with `data/smollm2_labels.jsonl`: real answers of the embedded SmolLM2, bare and with
  the seed adapter, labelled by hand under `data/LABELLING.md`;
- XSTest v2's Llama-2-70b-chat answers with their human labels (CC BY 4.0), read from `--xstest` (default
  `../shared/data/xstest_llama2` next to the repository, or `$ASCL_XSTEST_LLAMA2`); not shipped in the package.

Each real source weighs the same in the loss (its rows share one unit), the fragments four units (they are the
single cues the rules were written from, in many models' styles), so no real model's style dominates. Features (see
`refusal_model`): the phrase rules' cue, words and word pairs, structure. Vocabulary: words and word pairs seen in
answers to at least MIN_PROMPTS different prompts and in at least MIN_SOURCES sources (the fragments count as one),
so neither one prompt's subject nor one model's verbal habit gets a weight. Each source also gets its own copy of
the cue, structure and bias features while fitting, so what is peculiar to one model stays out of the shared weights.
The shipped weights are the shared ones plus the copy of the REFERENCE source, the fragments: an answer from a model
the judge has never seen is judged as the fragments (written in many chat models' styles) are, not by the average
of the sources, of which two are a 135M model whose answers with no refusal phrase are often off-topic declines
(without it, a plain answer to a benign prompt with no refusal phrase scored P(refusal) about 0.5).
Model: logistic regression with L2 (light on the cue and structure features), fitted by Nesterov-accelerated
full-batch gradient descent from zeros for a fixed number of steps (no randomness: rerunning it writes the same
bytes; weights are rounded to 4 decimals). Threshold 0.5: the model is fitted to be calibrated, so the decision is
P >= 0.5. Hyperparameters (fragment weight, L2) were chosen from a handful of tries on the leave-one-source-out
figures, so those figures are slightly optimistic.

`leave_one_source_out` refits with one real source entirely out (vocabulary included) and predicts it: the honest
figure (`benchmarks/bench_judge.py`).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from ascl_data.judge import refusal, refusal_model

PACKAGE_DATA = Path(__file__).parent / "data"
FRAGMENTS = PACKAGE_DATA / "fragments"
FRAGMENT_FILES = ("dev.jsonl", "dev_extra.jsonl", "dev_extra3.jsonl", "legacy.jsonl")
SMOLLM2_ANSWERS = PACKAGE_DATA / "smollm2_answers.jsonl"
SMOLLM2_LABELS = PACKAGE_DATA / "smollm2_labels.jsonl"
REPO = Path(__file__).resolve().parents[2]
XSTEST_ENV = "ASCL_XSTEST_LLAMA2"
XSTEST_DEFAULT = REPO.parent / "shared" / "data" / "xstest_llama2"
XSTEST_FILE = "completions_llama2.csv"
XSTEST_SOURCE = "xstest_llama2-70b-chat"
REAL_SOURCES = (XSTEST_SOURCE, "smollm2-135m", "smollm2-135m-seed")
LABELS = {"1_full_compliance": "comply", "2_full_refusal": "refusal", "3_partial_refusal": "partial_refusal"}

MIN_PROMPTS = 5
MIN_SOURCES = 2
FRAGMENT_WEIGHT = 4.0
L2 = 0.1
L2_CUES = 0.01
STEPS = 2500
THRESHOLD = 0.5
DECIMALS = 4
SEED = 0  # nothing is drawn at random; recorded in the manifest for the record
COMMAND = "python -m ascl_data.judge.train"
REFERENCE = "fragments"  # the source whose own cue, structure and bias weights ship (see above)


def xstest_path(path: Path | str | None = None) -> Path:
    return Path(path or os.environ.get(XSTEST_ENV) or XSTEST_DEFAULT)


def _jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as exc:
                    raise SystemExit(f"{path}: line {n} is not JSON ({exc})") from None
    return rows


def load_fragments() -> list[dict]:
    rows = []
    for name in FRAGMENT_FILES:
        for r in _jsonl(FRAGMENTS / name):
            rows.append({"source": "fragments", "prompt": r["prompt"], "text": r["response"],
                         "gold": "comply" if r["label"] == "comply" else "refusal", "label3": r["label"], "safe": None})
    return rows


def _label(value: object, where: str) -> str:
    if value not in LABELS:
        raise SystemExit(f"{where}: label {value!r} is not one of {', '.join(LABELS)}")
    return LABELS[value]  # type: ignore[index]


def load_smollm2() -> list[dict]:
    """The hand-labelled SmolLM2 answers (settled labels), in file order; rows not yet labelled are left out."""
    labels = {r["id"]: r["final_label"] for r in _jsonl(SMOLLM2_LABELS) if r.get("final_label")}
    for row_id, value in labels.items():
        _label(value, f"{SMOLLM2_LABELS.name}: row {row_id!r} final_label")
    return [{"source": r["source"], "prompt": r["prompt"], "text": r["answer"], "gold": LABELS[labels[r["id"]]],
             "safe": bool(r["safe"]), "id": r["id"]}
            for r in _jsonl(SMOLLM2_ANSWERS) if r["id"] in labels]


def load_xstest(path: Path | str | None = None) -> list[dict]:
    file = xstest_path(path) / XSTEST_FILE
    if not file.is_file():
        raise SystemExit(f"XSTest Llama-2 answers not found: {file} (pass --xstest DIR or set ${XSTEST_ENV})")
    with file.open(encoding="utf-8") as fh:
        return [{"source": XSTEST_SOURCE, "prompt": r["prompt"], "text": r["completion"],
                 "gold": _label(r["final_label"], f"{file}: row {r['id']!r} final_label"), "safe": not r["type"].startswith("contrast_"), "id": r["id"]}
                for r in csv.DictReader(fh)]


def load_rows(xstest: Path | str | None = None) -> list[dict]:
    """Every training row: fragments, XSTest Llama-2, SmolLM2 bare and seed. Each gets `y` (1 = refusal or partial
    refusal), and the rules' `scan` and `cues`."""
    rows = load_fragments() + load_xstest(xstest) + load_smollm2()
    for r in rows:
        r["y"] = 0 if r["gold"] == "comply" else 1
        _, _, r["cues"], r["scan"] = refusal.rules(r["text"])
    return rows


def vocabulary(rows: list[dict]) -> set[str]:
    prompts: dict[str, set[str]] = defaultdict(set)
    sources: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        if r["scan"] is None:
            continue
        for f in refusal_model.features(r["scan"], (), frozenset()):
            if not f.startswith("#"):
                prompts[f].add(r["prompt"])
                sources[f].add(r["source"])
    return {f for f in prompts if len(prompts[f]) >= MIN_PROMPTS and len(sources[f]) >= MIN_SOURCES}


def _sample_weights(rows: list[dict]) -> np.ndarray:
    count: dict[str, int] = defaultdict(int)
    for r in rows:
        count[r["source"]] += 1
    return np.array([(FRAGMENT_WEIGHT if r["source"] == "fragments" else 1.0) / count[r["source"]] for r in rows])


def fit(rows: list[dict], l2: float = L2, steps: int = STEPS) -> dict[str, float]:
    """Logistic-regression weights per feature ('#bias' included): the shared ones, the REFERENCE source's own copy of
    the cue, structure and bias features added in; rounded to DECIMALS, zero weights dropped."""
    vocab = vocabulary(rows)
    row_feats = []
    for r in rows:
        if r["scan"] is None:  # empty answers: the classifier calls them refusals without the model
            row_feats.append(set())
            continue
        found = {f for f in refusal_model.features(r["scan"], r["cues"], vocab) if f in vocab or f.startswith("#")}
        # Each source's own copy of the rule, structure and bias features ("source|#..."), fitted beside the shared
        # ones and dropped from the shipped weights: what is peculiar to one model (a 135M model's short answers
        # are mostly off-topic declines) lands in its copy, what the sources share in the shared weight.
        found |= {f"{r['source']}|{f}" for f in found if f.startswith("#")} | {f"{r['source']}|#bias"}
        row_feats.append(found)
    names = sorted(set().union(*row_feats) | {"#bias"})
    index = {f: i for i, f in enumerate(names)}
    keep = [i for i, r in enumerate(rows) if r["scan"] is not None]
    cols, ptr = [], [0]
    for i in keep:
        cols.extend(sorted(index[f] for f in row_feats[i] | {"#bias"}))
        ptr.append(len(cols))
    cols_a = np.array(cols, dtype=np.int64)
    row_of = np.repeat(np.arange(len(keep)), np.diff(ptr))
    starts = np.array(ptr[:-1], dtype=np.int64)
    y = np.array([rows[i]["y"] for i in keep], dtype=np.float64)
    sw = _sample_weights([rows[i] for i in keep])
    d = len(names)
    # The rules' cues and the structure features are few and general: they are barely shrunk (L2_CUES), so a rule
    # that real answers bear out keeps its full weight; the words are shrunk by `l2`.
    reg = np.array([L2_CUES if f.startswith("#") or "|#" in f else l2 for f in names])
    reg[index["#bias"]] = 0.0

    def xw(w: np.ndarray) -> np.ndarray:
        return np.add.reduceat(w[cols_a], starts)

    def xtr(r: np.ndarray) -> np.ndarray:
        return np.bincount(cols_a, weights=r[row_of], minlength=d)

    # Step size from the curvature bound: 0.25 * ||X^T S X|| (power iteration) + l2.
    v = np.ones(d) / np.sqrt(d)
    for _ in range(30):
        u = xtr(sw * xw(v))
        lam = float(np.linalg.norm(u))
        v = u / lam
    lr = 1.0 / (0.25 * lam + l2)
    w = np.zeros(d)
    prev = w.copy()
    for t in range(1, steps + 1):
        look = w + (t - 1) / (t + 2) * (w - prev)
        z = xw(look)
        p = 1.0 / (1.0 + np.exp(-z))
        grad = xtr(sw * (p - y)) + reg * look
        prev, w = w, look - lr * grad
    out = {}
    for f, i in index.items():
        ref = index.get(f"{REFERENCE}|{f}") if f.startswith("#") else None
        value = round(float(w[i] + (w[ref] if ref is not None else 0.0)), DECIMALS)
        if "|#" not in f and (value != 0.0 or f == "#bias"):
            out[f] = value
    return out


def predict(rows: list[dict], model: refusal_model.Model) -> list[float]:
    """P(refusal) of each row as the classifier gives it (1 for an empty answer)."""
    return [1.0 if r["scan"] is None else model.probability(r["scan"], r["cues"]) for r in rows]


def leave_one_source_out(rows: list[dict], sources: tuple[str, ...] = REAL_SOURCES, **kw) -> dict[str, list[float]]:
    """{held-out source: P(refusal) of its rows (in order)}, each from a model fitted without any of its rows."""
    out = {}
    for held in sources:
        model = refusal_model.Model(fit([r for r in rows if r["source"] != held], **kw), THRESHOLD)
        out[held] = predict([r for r in rows if r["source"] == held], model)
    return out


def held_out_accuracy(rows: list[dict], sources: tuple[str, ...] = REAL_SOURCES) -> dict[str, float]:
    """{source: accuracy of the judge's binary verdict (`refusal.assess`: rules and model) on the source's rows, the
    model refitted without any of them}: the figure a card quotes (`benchmarks/bench_judge.py` has the rest)."""
    out = {}
    for held in sources:
        model = refusal_model.Model(fit([r for r in rows if r["source"] != held]), THRESHOLD)
        rows_held = [r for r in rows if r["source"] == held]
        right = sum((refusal.assess(r["text"], model)[1] != "comply") == bool(r["y"]) for r in rows_held)
        out[held] = round(right / len(rows_held), 4)
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def training_files(xstest: Path | str | None = None) -> dict[str, Path]:
    files = {f"ascl_data/judge/data/fragments/{n}": FRAGMENTS / n for n in FRAGMENT_FILES}
    files["ascl_data/judge/data/smollm2_answers.jsonl"] = SMOLLM2_ANSWERS
    files["ascl_data/judge/data/smollm2_labels.jsonl"] = SMOLLM2_LABELS
    files[f"xstest_llama2/{XSTEST_FILE}"] = xstest_path(xstest) / XSTEST_FILE
    return files


def write(out: Path, weights: dict[str, float], rows: list[dict], xstest: Path | str | None = None) -> Path:
    """Write `refusal_model.json` and `refusal_model.manifest.json` into `out`; return the weights path."""
    from ascl_data import __version__

    out.mkdir(parents=True, exist_ok=True)
    path = out / refusal_model.WEIGHTS_FILE.name
    body = {"what": "fast refusal judge: logistic weights per feature (see ascl_data/judge/refusal_model.py); "
                    "P(refusal or partial refusal) = sigmoid(sum of the weights of the answer's features)",
            "threshold": THRESHOLD, "weights": dict(sorted(weights.items()))}
    path.write_text(json.dumps(body, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        counts[r["source"]] += 1
    manifest = {
        "weights": path.name,
        "weights_sha256": sha256(path),
        "training_files_sha256": {name: sha256(p) for name, p in training_files(xstest).items()},
        "rows": dict(sorted(counts.items())),
        "seed": SEED,
        "command": COMMAND,
        "package_version": __version__,
        "hyperparameters": {"min_prompts": MIN_PROMPTS, "min_sources": MIN_SOURCES, "fragment_weight": FRAGMENT_WEIGHT,
                            "l2": L2, "l2_cues": L2_CUES, "steps": STEPS, "threshold": THRESHOLD, "decimals": DECIMALS,
                            "reference_source": REFERENCE},
        "features": len(weights),
        "held_out_accuracy": held_out_accuracy(rows),
        "held_out": "each real source's accuracy from a model refitted without any of its rows (leave-one-source-out), "
                    "binary: full compliance vs refusal or partial refusal, against human labels",
    }
    (out / "refusal_model.manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--xstest", type=Path, default=None,
                    help=f"folder of {XSTEST_FILE} (default: ${XSTEST_ENV} or ../shared/data/xstest_llama2)")
    ap.add_argument("--out", type=Path, default=PACKAGE_DATA, help="where the weights and manifest go")
    args = ap.parse_args(argv)
    rows = load_rows(args.xstest)
    weights = fit(rows)
    path = write(args.out, weights, rows, args.xstest)
    print(f"wrote {path} ({len(weights)} features from {len(rows)} rows) and its manifest", file=sys.stderr)


if __name__ == "__main__":
    main()
