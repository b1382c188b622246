"""From per-item records to the numbers the ASCL paper reports, in percent.

Per (benchmark, mode): the benchmark's metric over scored answers (`safety_rate`, `refusal_rate` or `accuracy`,
which is avg@1 over all samples), `pass@k` for reasoning with k samples (an item counts if any of its k answers is
right: the unbiased estimator with n = k), `consultation_rate` and `mean_tool_calls` over all answers, `failure_rate`
(conversations the tool loop could not finish), `text_after_call_rate` (answers with text after a tool call, dropped
as vLLM's hermes parser drops it), `echoed_tool_result_rate` (answers that copy the tool result back, scored as the
text a vLLM server returns), `unscored` (answers the judge could not score; counted, never
silently dropped), and `uncertain` with `uncertain_rate` (answers in the judge's uncertain band that no second judge
decided, `judge.uncertain`; left out of the metric, which is then over the answers the judge was sure of). With a
model judge: `judge_agreement`, the share of answers both judges labelled on which the fast classifier and the model
judge agree (comply or not, for binary guards), and `judge_harmful`, the share the model judge flagged harmful. Per (suite, mode): the mean of its benchmarks' metric, as the paper's "average" column.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

SUITE_ORDER = ("safety", "overrefusal", "reasoning")


def _pct(values: list[bool]) -> float | None:
    return round(100 * sum(values) / len(values), 2) if values else None


def summarise(
    records: list[dict[str, Any]], benches: dict[str, Any], samples: int = 1, seconds: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    """One row per (benchmark, mode) in benchmark order, then one `average` row per (suite, mode)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["benchmark"], r["mode"])].append(r)
    modes = list(dict.fromkeys(r["mode"] for r in records))
    rows = []
    for name, bench in benches.items():
        for mode in modes:
            rs = groups.get((name, mode), [])
            if not rs:
                continue
            scored = [r for r in rs if r["scored"]]
            uncertain = sum(bool(r.get("uncertain")) for r in rs)
            row: dict[str, Any] = {
                "benchmark": name, "suite": bench.suite, "mode": mode, "metric": bench.metric,
                "n": len({r["item_id"] for r in rs}), "answers": len(rs),
                "unscored": len(rs) - len(scored) - uncertain, "uncertain": uncertain,
                "uncertain_rate": _pct([bool(r.get("uncertain")) for r in rs]),
                "value": _pct([bool(r["success"]) for r in scored]),
            }
            if bench.suite == "reasoning" and samples > 1:
                by_item: dict[str, list[bool]] = defaultdict(list)
                for r in scored:
                    by_item[r["item_id"]].append(bool(r["success"]))
                row[f"pass@{samples}"] = _pct([any(v) for v in by_item.values()])
            row["consultation_rate"] = _pct([bool(r["consulted"]) for r in rs])
            row["mean_tool_calls"] = round(sum(r["num_tool_calls"] for r in rs) / len(rs), 3)
            row["failure_rate"] = _pct([bool(r["failed"]) for r in rs])
            row["text_after_call_rate"] = _pct([bool(r.get("text_after_call")) for r in rs])
            row["echoed_tool_result_rate"] = _pct([bool(r.get("echoed_tool_result")) for r in rs])
            if any("model_verdict" in r for r in rs):
                row["judge_agreement"] = _pct([r["judges_agree"] for r in rs if r.get("judges_agree") is not None])
                row["judge_harmful"] = _pct([r["model_harmful"] for r in rs if r.get("model_harmful") is not None])
            if seconds and f"{name}|{mode}" in seconds:
                row["seconds"] = seconds[f"{name}|{mode}"]
            rows.append(row)
    for suite in SUITE_ORDER:
        for mode in modes:
            values = [r["value"] for r in rows if r["suite"] == suite and r["mode"] == mode and r["value"] is not None]
            if values:
                metric = next(r["metric"] for r in rows if r["suite"] == suite)
                rows.append({"benchmark": "average", "suite": suite, "mode": mode, "metric": metric,
                             "value": round(sum(values) / len(values), 2), "n": len(values)})
    return rows
