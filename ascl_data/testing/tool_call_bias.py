"""A tool-call logit bias for tests: `sequence_bias` that makes a model with no tool-calling skill (a tiny random one) pick between a well-formed
`retrieve_safety_rules` call and ending its turn, about evenly: both rollout modes appear, so IFPO has work to do.

A standard transformers generation option, passed through TRL's `generation_kwargs`; used by the rl tests and the
IFPO step-time benchmark.
"""

from __future__ import annotations

from typing import Any

from ascl_data.rule_tool import TOOL_NAME

CALL_TEXT = (
    '<tool_call>\n{"name": "' + TOOL_NAME + '", "arguments": {"query": "is this allowed", "top_k": 1}}\n</tool_call>'
    "<|im_end|>"
)


def tool_call_bias(tokenizer: Any, start_bias: float = 10.5) -> list[list]:
    """sequence_bias entries: the call's first token and <|im_end|> get `start_bias` (~ln(vocab), about as likely
    as the rest of a random model's vocabulary together); once started, the call completes."""
    ids = tokenizer(CALL_TEXT, add_special_tokens=False)["input_ids"]
    entries: list[list] = [[ids[:1], start_bias], [[tokenizer.convert_tokens_to_ids("<|im_end|>")], start_bias]]
    entries += [[ids[: k + 1], 100.0] for k in range(1, len(ids))]
    return entries
