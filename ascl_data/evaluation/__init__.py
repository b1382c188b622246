"""`ascl-data eval`: the standard safety, over-refusal and reasoning benchmarks, scored by the package's judge,
with the rule tool live, absent, or the rule book in the system prompt.

- `benchmarks`: the adapters (Hub id, config, split, revision, columns, prompt kind, scoring) and the suites;
- `scoring`: the one call to the judge per answer, and multiple-choice letter parsing;
- `run`: rule modes and generation through the build's tool loop and `RuleTool`;
- `metrics`: safety rate, refusal rate, accuracy (avg@1), pass@k, consultation rate, mean tool calls;
- `report`: tables (rich and markdown), JSON, per-item records, and `compare` across runs.
"""

from ascl_data.evaluation.benchmarks import BENCHMARKS, SUITES, Benchmark, Item, resolve
from ascl_data.evaluation.metrics import summarise
from ascl_data.evaluation.report import compare, markdown, plot_compare, render_tables, write_outputs
from ascl_data.evaluation.run import evaluate, mode_plan
from ascl_data.evaluation.scoring import judge_answer, parse_choice
from ascl_data.evaluation.settings import MODES, CustomBenchmark, EvalSettings

__all__ = [
    "BENCHMARKS", "MODES", "SUITES", "Benchmark", "CustomBenchmark", "EvalSettings", "Item", "compare", "evaluate",
    "judge_answer", "markdown", "mode_plan", "parse_choice", "plot_compare", "render_tables", "resolve", "summarise",
    "write_outputs",
]
