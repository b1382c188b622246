"""Ready adapters for common safety and reasoning datasets on the Hub.

An adapter knows a dataset's default id, config and split, the columns it needs, its licence, and how one of
its rows becomes a prompt with a kind, category and reference. A recipe names it (`adapter: gsm8k`) and may
still override `dataset`, `config`, `split` and `revision`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]
# what an adapter returns: {"prompt": str} or {"messages": [...]}, plus "kind", and optional "category", "reference"
Normalised = dict[str, Any]


@dataclass(frozen=True)
class Adapter:
    name: str
    dataset: str
    config: str | None
    split: str
    required: tuple[str, ...]
    convert: Callable[[Row], Normalised | None]  # None: the row has no usable prompt (becomes a rejection)
    license: str | None = None
    load_kwargs: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def _boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} in a MATH solution (balanced braces)."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i, depth = start + len("\\boxed{"), 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j].strip()
    return None


def _gsm8k(row: Row) -> Normalised:
    answer = str(row["answer"])
    ref = answer.split("####")[-1].strip().replace(",", "") if "####" in answer else None
    return {"prompt": row["question"], "kind": "reasoning", "category": "math", "reference": ref}


def _math(row: Row) -> Normalised:
    ref = row.get("answer") or _boxed(str(row.get("solution") or ""))
    category = row.get("type") or row.get("subject") or "math"
    return {"prompt": row["problem"], "kind": "reasoning", "category": _slug(str(category)), "reference": ref}


def _wildjailbreak(row: Row) -> Normalised | None:
    data_type = str(row.get("data_type") or "")
    adversarial = data_type.startswith("adversarial")
    prompt = row.get("adversarial") if adversarial else row.get("vanilla")
    if not prompt:
        return None
    kind = {
        "vanilla_harmful": "harmful",
        "adversarial_harmful": "jailbreak",
        "vanilla_benign": "borderline",  # benign requests that look harmful: the over-refusal probes
        "adversarial_benign": "borderline",
    }.get(data_type)
    if kind is None:
        return None
    return {"prompt": prompt, "kind": kind, "category": None}


def _first_true(mapping: Any) -> str | None:
    if isinstance(mapping, dict):
        for key, value in mapping.items():
            if value:
                return _slug(key)
    return None


def _beavertails(row: Row) -> Normalised:
    # is_safe judges the QA pair; a prompt whose answer was unsafe is treated as harmful, else borderline
    harmful = not row.get("is_safe", True)
    return {"prompt": row["prompt"], "kind": "harmful" if harmful else "borderline", "category": _first_true(row.get("category"))}


def _pku_saferlhf(row: Row) -> Normalised:
    unsafe = not row.get("is_response_0_safe", True) or not row.get("is_response_1_safe", True)
    return {"prompt": row["prompt"], "kind": "harmful" if unsafe else "borderline", "category": None}


def _or_bench(kind: str) -> Callable[[Row], Normalised]:
    def convert(row: Row) -> Normalised:
        return {"prompt": row["prompt"], "kind": kind, "category": _slug(str(row.get("category") or "")) or None}

    return convert


def _xstest(row: Row) -> Normalised:
    label = str(row.get("label") or row.get("type") or "")
    kind = "harmful" if "unsafe" in label or label.startswith("contrast") else "borderline"
    return {"prompt": row["prompt"], "kind": kind, "category": _slug(str(row.get("type") or "")) or None}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in [
        Adapter("gsm8k", "openai/gsm8k", "main", "train", ("question", "answer"), _gsm8k, "mit"),
        Adapter("math", "EleutherAI/hendrycks_math", "algebra", "train", ("problem", "solution"), _math, "mit"),
        Adapter("math500", "HuggingFaceH4/MATH-500", None, "test", ("problem", "answer"), _math, "mit"),
        Adapter(
            "wildjailbreak",
            "allenai/wildjailbreak",
            "train",
            "train",
            ("data_type",),
            _wildjailbreak,
            "odc-by",
            load_kwargs={"delimiter": "\t", "keep_default_na": False},
            note="gated: accept the terms on the Hub and log in first",
        ),
        Adapter("beavertails", "PKU-Alignment/BeaverTails", None, "30k_train", ("prompt", "is_safe"), _beavertails, "cc-by-nc-4.0"),
        Adapter(
            "pku_saferlhf", "PKU-Alignment/PKU-SafeRLHF", "default", "train", ("prompt",), _pku_saferlhf, "cc-by-nc-4.0"
        ),
        Adapter("or_bench", "bench-llm/or-bench", "or-bench-80k", "train", ("prompt",), _or_bench("borderline"), "cc-by-4.0"),
        Adapter("or_bench_hard", "bench-llm/or-bench", "or-bench-hard-1k", "train", ("prompt",), _or_bench("borderline"), "cc-by-4.0"),
        Adapter("or_bench_toxic", "bench-llm/or-bench", "or-bench-toxic", "train", ("prompt",), _or_bench("harmful"), "cc-by-4.0"),
        Adapter("xstest", "walledai/XSTest", None, "test", ("prompt",), _xstest, "cc-by-4.0"),
    ]
}
