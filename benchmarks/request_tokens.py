"""The cost of the ASCL request itself: prompt tokens of a first-turn request, counted with the real tokenizer and
chat template of the embedded teacher (SmolLM2-135M-Instruct), as a server renders them.

Why: every teacher request carries the adaptive system prompt and the rule tool's schema; on a server whose
throughput falls with prompt length (the vLLM CPU server), those tokens are paid on every request, and prefix caching
is what saves them. Variants, one user prompt of the throughput benchmark:
- plain: the user turn alone (what a bare chat request sends);
- + system prompt: the adaptive system prompt, no tool;
- + system prompt + tool: the request the build sends (the rule tool's schema as it ships).
Results: benchmarks/results/request_tokens.json.

    python benchmarks/request_tokens.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer

from ascl_data.embedded import embedded_model_path
from ascl_data.prompts import adaptive_system_prompt
from ascl_data.rule_tool import RuleTool
from ascl_data.rulebook import load_ruleset
from provenance import write_results

RESULTS = Path(__file__).parent / "results" / "request_tokens.json"
USER = "Question 17 (134623): what should I know about locks chemistry passwords gardening? Variant 289."


def main() -> None:
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_path())
    ruleset = load_ruleset("default")
    schema = RuleTool(ruleset).schema()
    user = [{"role": "user", "content": USER}]
    system = [{"role": "system", "content": adaptive_system_prompt(ruleset)}]

    def tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
        ids = tokenizer.apply_chat_template(messages, tools=tools, tokenize=True, add_generation_prompt=True)
        return len(ids["input_ids"] if hasattr(ids, "keys") else ids)

    counts = {
        "plain": tokens(user),
        "+ system prompt": tokens(system + user),
        "+ system prompt + tool": tokens(system + user, [schema]),
    }
    result = {
        "tokenizer": "SmolLM2-135M-Instruct (embedded), its chat template",
        "ruleset": f"{ruleset.name}@{ruleset.version}",
        "prompt_tokens_first_turn": counts,
        "system_prompt_tokens": len(tokenizer(adaptive_system_prompt(ruleset))["input_ids"]),
        "tool_schema_json_tokens": len(tokenizer(json.dumps(schema))["input_ids"]),
    }
    write_results(RESULTS, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
