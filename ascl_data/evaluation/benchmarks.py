"""The public benchmarks as adapters: where each lives on the Hub, which rows and columns it uses, what kind of prompt
it is, and how its answers are scored.

Every adapter loads with `datasets.load_dataset(hub_id, config, split=..., revision=...)`, or from a local file or
folder with the same columns (`--local NAME=PATH`, `--data-dir DIR`), so a run works offline and a copy made once on a
machine with Hub access gives the same items. `revision` is a field of each adapter: a Hub commit sha where public
evaluation code pins one (docs/evaluation.md names the sources; this machine cannot reach the Hub to check it), else
`"main"` (the default branch). `revisions: {name: sha}` in an eval config pins or overrides one, and the
report records the revision every benchmark was read at.

Scoring follows the harnesses people compare against: a safety benchmark counts a refusal or a safe completion as
safe; an over-refusal benchmark counts a refusal or a safe completion (a partial refusal in XSTest's terms) as a
refusal; multiple-choice answers are read with the regexes of simple-evals and lm-evaluation-harness
(`Answer: X`, `the answer is (X)`); numeric and symbolic answers go through `math_verify`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ascl_data.errors import InputError, Problem

Suite = Literal["safety", "overrefusal", "reasoning"]
Scoring = Literal["safety", "refusal", "math", "choice"]
METRIC_OF: dict[str, str] = {"safety": "safety_rate", "overrefusal": "refusal_rate", "reasoning": "accuracy"}
LETTERS = "ABCDEFGHIJKLMNOP"
LOCAL_SUFFIXES = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv", ".tsv": "csv"}

# Prompt templates of the usual harnesses: simple-evals' multiple-choice template (the last line "Answer: X"), and the
# boxed-answer instruction of lighteval / Qwen math evals, which `math_verify` reads best.
CHOICE_TEMPLATE = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'Answer: $LETTER' (without quotes) where LETTER is one of {letters}. Think step by step before "
    "answering.\n\n{question}\n\n{options}"
)
MATH_TEMPLATE = "{question}\n\nPlease reason step by step, and put your final answer within \\boxed{{}}."


@dataclass
class Item:
    """One benchmark prompt, ready to send: the user text, its kind, and what a correct answer is."""

    id: str
    prompt: str | list[dict[str, Any]]
    kind: str
    scoring: Scoring
    reference: str | None = None  # math: the answer; choice: the correct letter
    letters: str = ""  # choice: the letters offered


@dataclass(frozen=True)
class Benchmark:
    """An adapter: a Hub dataset (or a local copy with the same columns), the rows it keeps, and how it is scored."""

    name: str
    suite: Suite
    title: str
    hub_id: str | None  # None: no Hub copy is known, only a local file works
    config: str | None
    split: str
    columns: tuple[str, ...]  # the columns a local copy must have
    to_item: Callable[[dict[str, Any], int], Item | None] = field(repr=False)  # None drops the row
    revision: str = "main"
    load_kwargs: dict[str, Any] = field(default_factory=dict)
    rows: Any = field(default=None, repr=False)  # a user's benchmark: its rows, already read
    origin: str | None = None  # a user's benchmark: where its rows came from

    @property
    def metric(self) -> str:
        return METRIC_OF[self.suite]

    def source(self, revision: str | None = None) -> str:
        if self.hub_id is None:
            return "local copy only"
        cfg = f" config={self.config}" if self.config else ""
        return f"{self.hub_id}{cfg} split={self.split} revision={revision or self.revision}"


def _text(column: str, kind: str, scoring: Scoring, keep: Callable[[dict[str, Any]], bool] | None = None):
    """An item maker for prompt-only benchmarks: the prompt is `row[column]`; `keep` filters rows."""

    def make(row: dict[str, Any], i: int) -> Item | None:
        if keep is not None and not keep(row):
            return None
        return Item(id=str(i), prompt=str(row[column]), kind=kind, scoring=scoring)

    return make


def choice_item(question: str, options: list[str], gold: int, i: int) -> Item:
    """A multiple-choice item in simple-evals' format, lettered A, B, C..."""
    letters = LETTERS[: len(options)]
    shown = "\n".join(f"{letter}) {opt}" for letter, opt in zip(letters, options))
    text = CHOICE_TEMPLATE.format(letters=letters, question=question.strip(), options=shown)
    return Item(id=str(i), prompt=text, kind="reasoning", scoring="choice", reference=letters[gold], letters=letters)


def math_item(question: str, answer: str, i: int) -> Item:
    return Item(id=str(i), prompt=MATH_TEMPLATE.format(question=question.strip()), kind="reasoning",
                scoring="math", reference=answer.strip())


def _gsm8k(row: dict[str, Any], i: int) -> Item:
    # The reference solution ends "#### 72"; numbers may carry thousands separators.
    return math_item(row["question"], row["answer"].split("####")[-1].strip().replace(",", ""), i)


def _math500(row: dict[str, Any], i: int) -> Item:
    return math_item(row["problem"], row["answer"], i)


def _gpqa(row: dict[str, Any], i: int) -> Item:
    # simple-evals shuffles the four options with a seeded RNG per row; the gold answer moves with them.
    options = [row["Correct Answer"], row["Incorrect Answer 1"], row["Incorrect Answer 2"], row["Incorrect Answer 3"]]
    order = random.Random(i).sample(range(4), 4)
    return choice_item(row["Question"], [str(options[k]).strip() for k in order], order.index(0), i)


def _mmlu_pro(row: dict[str, Any], i: int) -> Item:
    return choice_item(row["question"], [str(o) for o in row["options"]], int(row["answer_index"]), i)


def _arc(row: dict[str, Any], i: int) -> Item:
    labels = list(row["choices"]["label"])
    return choice_item(row["question"], list(row["choices"]["text"]), labels.index(row["answerKey"]), i)


# Hub commit shas found pinned in public evaluation code (a search of a public code index; the Hub is unreachable
# here, so none was checked against the Hub itself). Each is pinned, character for character, by at least two
# unrelated projects loading the same config, split and columns as the adapter; docs/evaluation.md ("Benchmark sources
# and revisions", provenance table) names the repository and file of each source and why a conflicting sha was not
# taken.
# No public source gives a sha for walledai/HarmBench or OpenSafetyLab/Salad-Data: those two read "main".
REV_WILDGUARDMIX = "d29c47f41c8b51348b5c8e8c81c039b3132b66d1"  # allenai/wildguardmix
REV_WILDJAILBREAK = "5ddc12a7894f842b0619b8e1c7ee496b198af009"  # allenai/wildjailbreak
REV_JBB = "886acc352a31533ffbcf4ef22c744658688086fc"  # JailbreakBench/JBB-Behaviors
REV_STRONGREJECT = "df54272b395ce9e584d2f8140519935425d8549f"  # walledai/StrongREJECT
REV_XSTEST = "f1d713187c61b6ae64e602d74f0b3d812cc2e8e8"  # walledai/XSTest (HELM's pin)
REV_ORBENCH = "e36d8b80e81837c8a8f264bbb2a49f1b32c7e272"  # bench-llm/or-bench
REV_GSM8K = "740312add88f781978c0658806c59bc2815b9866"  # openai/gsm8k
REV_MATH500 = "6e4ed1a2a79af7d8630a6b768ec859cb5af4d3be"  # HuggingFaceH4/MATH-500
REV_GPQA = "633f5ee89ab8ad4522a9f850766b73f62147ffdd"  # Idavidrein/gpqa
REV_MMLU_PRO = "b189ec765aa7ed75c8acfea42df31fdae71f97be"  # TIGER-Lab/MMLU-Pro
REV_ARC = "210d026faf9955653af8916fad021475a3f00453"  # allenai/ai2_arc

BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in [
    # safety: the share of answers that refuse or safe-complete
    Benchmark("wildguardtest_harmful", "safety", "WildGuardTest (harmful prompts)", "allenai/wildguardmix",
              "wildguardtest", "test", ("prompt", "prompt_harm_label"),
              _text("prompt", "harmful", "safety", lambda r: r["prompt_harm_label"] == "harmful"),
              revision=REV_WILDGUARDMIX),
    Benchmark("wildjailbreak_harmful", "safety", "WildJailbreak eval (adversarial harmful)", "allenai/wildjailbreak",
              "eval", "train", ("adversarial", "data_type"),
              _text("adversarial", "jailbreak", "safety", lambda r: r["data_type"] == "adversarial_harmful"),
              revision=REV_WILDJAILBREAK, load_kwargs={"delimiter": "\t", "keep_default_na": False}),
    Benchmark("jailbreakbench", "safety", "JailbreakBench behaviours (harmful)", "JailbreakBench/JBB-Behaviors",
              "behaviors", "harmful", ("Goal",), _text("Goal", "harmful", "safety"), revision=REV_JBB),
    Benchmark("strongreject", "safety", "StrongREJECT", "walledai/StrongREJECT", None, "train", ("prompt",),
              _text("prompt", "harmful", "safety"), revision=REV_STRONGREJECT),
    Benchmark("harmbench", "safety", "HarmBench (standard text behaviours)", "walledai/HarmBench", "standard",
              "train", ("prompt",), _text("prompt", "harmful", "safety")),
    Benchmark("saladbench", "safety", "Salad-Bench (base set)", "OpenSafetyLab/Salad-Data", "base_set", "train",
              ("question",), _text("question", "harmful", "safety")),
    Benchmark("xstest_unsafe", "safety", "XSTest (unsafe contrast prompts)", "walledai/XSTest", None, "test",
              ("prompt", "label"), _text("prompt", "harmful", "safety", lambda r: r["label"] == "unsafe"),
              revision=REV_XSTEST),
    # over-refusal: the share of answers that refuse or safe-complete a safe request
    Benchmark("xstest", "overrefusal", "XSTest (safe prompts)", "walledai/XSTest", None, "test", ("prompt", "label"),
              _text("prompt", "borderline", "refusal", lambda r: r["label"] == "safe"), revision=REV_XSTEST),
    Benchmark("orbench_hard", "overrefusal", "OR-Bench-Hard-1K", "bench-llm/or-bench", "or-bench-hard-1k", "train",
              ("prompt",), _text("prompt", "borderline", "refusal"), revision=REV_ORBENCH),
    Benchmark("oktest", "overrefusal", "OKTest", None, None, "test", ("prompt",),
              _text("prompt", "borderline", "refusal")),
    Benchmark("wildjailbreak_benign", "overrefusal", "WildJailbreak eval (adversarial benign)",
              "allenai/wildjailbreak", "eval", "train", ("adversarial", "data_type"),
              _text("adversarial", "benign", "refusal", lambda r: r["data_type"] == "adversarial_benign"),
              revision=REV_WILDJAILBREAK, load_kwargs={"delimiter": "\t", "keep_default_na": False}),
    Benchmark("wildguardtest_benign", "overrefusal", "WildGuardTest (benign prompts)", "allenai/wildguardmix",
              "wildguardtest", "test", ("prompt", "prompt_harm_label"),
              _text("prompt", "benign", "refusal", lambda r: r["prompt_harm_label"] == "unharmful"),
              revision=REV_WILDGUARDMIX),
    # reasoning: accuracy (avg@1), pass@k with several samples
    Benchmark("gsm8k", "reasoning", "GSM8K", "openai/gsm8k", "main", "test", ("question", "answer"), _gsm8k,
              revision=REV_GSM8K),
    Benchmark("math500", "reasoning", "MATH-500", "HuggingFaceH4/MATH-500", None, "test", ("problem", "answer"),
              _math500, revision=REV_MATH500),
    Benchmark("gpqa_diamond", "reasoning", "GPQA-Diamond", "Idavidrein/gpqa", "gpqa_diamond", "train",
              ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"), _gpqa,
              revision=REV_GPQA),
    Benchmark("mmlu_pro", "reasoning", "MMLU-Pro", "TIGER-Lab/MMLU-Pro", None, "test",
              ("question", "options", "answer_index"), _mmlu_pro, revision=REV_MMLU_PRO),
    Benchmark("arc_challenge", "reasoning", "ARC-Challenge", "allenai/ai2_arc", "ARC-Challenge", "test",
              ("question", "choices", "answerKey"), _arc, revision=REV_ARC),
]}

SUITES: dict[str, list[str]] = {
    suite: [b.name for b in BENCHMARKS.values() if b.suite == suite] for suite in ("safety", "overrefusal", "reasoning")
}
SUITES["ascl"] = [name for names in list(SUITES.values()) for name in names]


def resolve(names: list[str]) -> list[Benchmark]:
    """Suite and benchmark names -> adapters, in order, without repeats; an unknown name lists the valid ones."""
    out: list[Benchmark] = []
    unknown = []
    for name in names:
        picked = SUITES.get(name) or ([name] if name in BENCHMARKS else None)
        if picked is None:
            unknown.append(name)
            continue
        out += [BENCHMARKS[n] for n in picked if BENCHMARKS[n] not in out]
    if unknown:
        valid = f"suites: {', '.join(SUITES)}; benchmarks: {', '.join(BENCHMARKS)}"
        problems = [Problem("--suite/--benchmark", n, f"unknown; valid {valid}") for n in unknown]
        raise InputError("eval benchmarks", problems)
    return out


def local_file(bench: Benchmark, local: dict[str, str], data_dir: str | None) -> Path | None:
    """The local copy of `bench`: `local[name]` (a file or folder), else `DATA_DIR/<name>.{jsonl,parquet,csv}` or a
    folder `DATA_DIR/<name>/`."""
    if bench.name in local:
        return Path(local[bench.name]).expanduser()
    if data_dir:
        base = Path(data_dir).expanduser()
        for candidate in [base / f"{bench.name}{s}" for s in LOCAL_SUFFIXES] + [base / bench.name]:
            if candidate.exists():
                return candidate
    return None


def read_local(path: Path, where: str) -> Any:
    """A local file, or every data file of a folder, as one `datasets.Dataset`."""
    from datasets import load_dataset

    if not path.exists():
        raise InputError(where, [Problem(str(path), "", "no such file or folder")])
    files = [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.suffix in LOCAL_SUFFIXES)
    fmts = {LOCAL_SUFFIXES.get(f.suffix) for f in files}
    if not files or None in fmts or len(fmts) > 1:
        raise InputError(where, [Problem(str(path), "", f"expected one kind of data file: {sorted(LOCAL_SUFFIXES)}")])
    fmt = fmts.pop()
    kwargs: dict[str, Any] = {"delimiter": "\t"} if fmt == "csv" and files[0].suffix == ".tsv" else {}
    return load_dataset(fmt, data_files=[str(f) for f in files], split="train", **kwargs)


def load_items(
    bench: Benchmark, limit: int | None, local: dict[str, str], data_dir: str | None, revision: str | None = None
) -> tuple[list[Item], str]:
    """The benchmark's items (the first `limit` kept rows, in dataset order) and where they came from."""
    path = local_file(bench, local, data_dir)
    if bench.rows is not None and path is None:
        ds, origin = bench.rows, bench.origin or bench.name
    elif path is not None:
        ds, origin = read_local(path, f"benchmark {bench.name}"), str(path)
        missing = [c for c in bench.columns if c not in ds.column_names]
        if missing:
            raise InputError(f"benchmark {bench.name}", [
                Problem(str(path), c, f"missing column; {bench.title} needs {list(bench.columns)}, "
                                      f"the file has {ds.column_names}") for c in missing
            ])
    else:
        ds, origin = _load_hub(bench, revision), bench.source(revision)
    items: list[Item] = []
    for i, row in enumerate(ds):
        item = bench.to_item(row, i)
        if item is not None:
            item.id = f"{bench.name}/{i}"
            items.append(item)
            if limit is not None and len(items) >= limit:
                break
    return items, origin


def _load_hub(bench: Benchmark, revision: str | None) -> Any:
    from datasets import load_dataset

    how = (f"point it at a local copy with the same columns ({', '.join(bench.columns)}): "
           f"--local {bench.name}=PATH (a .jsonl/.parquet/.csv file or a folder of them) or --data-dir DIR "
           f"holding {bench.name}.jsonl")
    if bench.hub_id is None:
        raise InputError(f"benchmark {bench.name}", [Problem(bench.title, "", f"has no Hub copy here; {how}")])
    try:
        return load_dataset(bench.hub_id, bench.config, split=bench.split, revision=revision or bench.revision,
                            **bench.load_kwargs)
    except Exception as exc:  # noqa: BLE001 - offline, gated, renamed: all end in the same advice
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise InputError(f"benchmark {bench.name}", [
            Problem(bench.source(revision), "", f"could not be loaded ({reason}); {how}")
        ]) from None
