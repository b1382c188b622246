"""Write the labelled refusal set from `fragments.py`: `dev.jsonl` (for tuning; with the other tuning files in
`ascl_data/judge/data/fragments/`, the fast classifier's training data), `heldout.jsonl` (never used to tune),
`dev_extra.jsonl` (more tuning rows, written later) and `PROVENANCE.json` (how, when, the split rule, file
hashes).

Split rule: within each style, the templates are ordered by sha256(SEED + template text) and the first third is
held out; each topic list (harmful, premise, benign) and the generic cautions are ordered the same way and halved.
A held-out row fills a held-out template with held-out topics and cautions only, so its score measures phrasing and
subjects the classifier was never tuned on. Deterministic: rerunning it rewrites the same bytes.

    python benchmarks/refusal_set/write_set.py
"""

from __future__ import annotations

import hashlib
import json
import math
import string
from collections import Counter, defaultdict
from pathlib import Path

import fragments as F

HERE = Path(__file__).parent
# The tuning rows are the fast classifier's training data, so they live in the package; held-out stays here.
PACKAGE = HERE.parent.parent / "ascl_data" / "judge" / "data" / "fragments"
SEED = "ascl-refusal-set-2026-11-29"
WRITTEN = "2026-11-29T23:10Z"


def _h(text: str) -> str:
    return hashlib.sha256((SEED + "\x00" + text).encode()).hexdigest()


def _held_out_first(items: list, key, share: float) -> tuple[list, list]:
    """(held-out, dev): the first `share` of `items` ordered by seeded hash."""
    ordered = sorted(items, key=lambda it: _h(key(it)))
    k = math.ceil(len(ordered) * share)
    return ordered[:k], ordered[k:]


def _slots(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _fill(template: str, topic: dict, cautions: list[str], i: int, numbered: bool) -> str | None:
    """The template filled with `topic`; None when the topic lacks a slot the template needs."""
    values = dict(topic)
    if "steps" in topic:
        values["steps"] = "\n".join((f"{n}. " if numbered else "- ") + s for n, s in enumerate(topic["steps"], 1))
    for key in ("acting", "thing"):
        if key in topic:
            values[f"{key}_cap"] = topic[key][0].upper() + topic[key][1:]
    for key in ("safe", "note"):
        if topic.get(key):
            values[f"{key}_lc"] = topic[key][0].lower() + topic[key][1:]
    values["caution"] = cautions[i % len(cautions)]
    values["caution2"] = cautions[(i + 1) % len(cautions)]
    if any(not values.get(s) for s in _slots(template)):
        return None
    return " ".join(template.format(**values).split(" ")).strip()


def build() -> dict[str, list[dict]]:
    held_topics, dev_topics = {}, {}
    for kind, topics in (("harmful", F.HARMFUL), ("premise", F.PREMISE), ("benign", F.BENIGN)):
        held_topics[kind], dev_topics[kind] = _held_out_first(topics, lambda t: t["prompt"], 0.5)
    held_cautions, dev_cautions = _held_out_first(F.GENERIC_CAUTION, lambda c: c, 0.5)
    by_style = defaultdict(list)
    for t in F.TEMPLATES:
        by_style[t[0]].append(t)
    splits: dict[str, list[dict]] = {"heldout": [], "dev": []}
    for style, templates in by_style.items():
        held, dev = _held_out_first(templates, lambda t: t[4], 1 / 3)
        for split, chosen, topics, cautions in (("heldout", held, held_topics, held_cautions),
                                                 ("dev", dev, dev_topics, dev_cautions)):
            for t in chosen:
                _, family, label, kind, text = t
                tid = f"{style}:{family}:{_h(text)[:8]}"
                numbered = int(_h(text)[0], 16) % 2 == 0
                for i, topic in enumerate(topics[kind]):
                    response = _fill(text, topic, cautions, i, numbered)
                    if response is None:
                        continue
                    splits[split].append({
                        "id": _h(tid + topic["prompt"])[:12], "prompt": topic["prompt"], "response": response,
                        "label": label, "style": style, "family": family, "template": tid, "split": split,
                    })
    extra = []
    for i, (style, family, label, kind, text) in enumerate(F.EXTRA_TEMPLATES):
        tid = f"{style}:{family}:{_h(text)[:8]}"
        for j, topic in enumerate(dev_topics[kind]):
            response = _fill(text, topic, dev_cautions, i + j, numbered=j % 2 == 0)
            if response is not None:
                extra.append({"id": _h(tid + topic["prompt"])[:12], "prompt": topic["prompt"], "response": response,
                              "label": label, "style": style, "family": family, "template": tid, "split": "dev_extra"})
    splits["dev_extra"] = extra
    splits["dev_extra3"] = _batch3(dev_cautions)
    return splits


def _batch3(cautions: list[str]) -> list[dict]:
    """EXTRA_TEMPLATES_3 filled with their own new topics (EXTRA_TOPICS_3): tuning rows on subjects no other
    split uses."""
    rows = []
    for i, (style, family, label, kind, text) in enumerate(F.EXTRA_TEMPLATES_3):
        tid = f"{style}:{family}:{_h(text)[:8]}"
        for j, topic in enumerate(F.EXTRA_TOPICS_3[kind]):
            response = _fill(text, topic, cautions, i + j, numbered=j % 2 == 0)
            if response is not None:
                rows.append({"id": _h(tid + topic["prompt"])[:12], "prompt": topic["prompt"], "response": response,
                             "label": label, "style": style, "family": family, "template": tid,
                             "split": "dev_extra3"})
    return rows


def main() -> None:
    splits = build()
    hashes = {}
    for split, rows in splits.items():
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
        (HERE if split == "heldout" else PACKAGE).joinpath(f"{split}.jsonl").write_bytes(data)
        hashes[f"{split}.jsonl"] = hashlib.sha256(data).hexdigest()
    provenance = {
        "how": "hand-written fragments (benchmarks/refusal_set/fragments.py): prompts with topic pieces and response "
               "templates imitating the refusal and answer habits of several model families, filled by write_set.py; "
               "labels are the template's label under the guideline in ascl_data/judge/refusal.py",
        "written": WRITTEN,
        "written_by": "an ascl-data engineer session, for issue 11, before any tuning against this set",
        "split_rule": "per style, templates ordered by sha256(seed + text): first third held out; topics (per kind) "
                      "and generic cautions ordered the same way and halved; held-out rows use only held-out "
                      "templates, topics and cautions",
        "seed": SEED,
        "held_out_use": "never used to tune the classifier; only scored by benchmarks/bench_refusal_classifier.py",
        "dev_extra": "EXTRA_TEMPLATES, two batches written after the first and the second held-out measurement "
                     "(binary accuracy 0.871, then 0.905), from the tuning part's topics only; for tuning, not part "
                     "of the held-out comparison",
        "dev_extra3": "EXTRA_TEMPLATES_3 (lectures, partial refusals, rambling small models, moralising, redirects, "
                      "and compliant answers that mention law or risk) on new topics of their own (EXTRA_TOPICS_3), "
                      "written after the fourth held-out measurement without looking at held-out rows; for tuning "
                      "the classifier's rules and its linear model",
        "rows": {s: len(r) for s, r in splits.items()},
        "labels": {s: dict(Counter(x["label"] for x in r)) for s, r in splits.items()},
        "styles": {s: dict(Counter(x["style"] for x in r)) for s, r in splits.items()},
        "families": {s: dict(Counter(x["family"] for x in r)) for s, r in splits.items()},
        "sha256": hashes,
    }
    (HERE / "PROVENANCE.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps(provenance["rows"]), json.dumps(provenance["labels"]))


if __name__ == "__main__":
    main()
