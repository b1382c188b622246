"""Reward functions for GRPO/IFPO, by prompt kind, in TRL's signature.

TRL calls each function as ``f(prompts=..., completions=..., completion_ids=..., **columns)`` where ``columns``
holds the dataset's other columns (``kind``, ``reference``, ...). With tools, each completion is a list of
messages (assistant turns, tool results, the final assistant turn); we score the final assistant text. A function
returns ``None`` for rows it does not judge, so TRL leaves them out of that function's mean.

The verdicts come from the builder's judge (:mod:`ascl_data.judge`), so the policy is rewarded by exactly the rule
that accepted or rejected the training traces.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ascl_data.rl.environment import messages_of, consulted, final_text
from ascl_data.toolcalls import TOOL_MARKUP

__all__ = ["consulted", "default_reward_funcs", "final_text", "make_format_reward", "reasoning_reward", "safety_reward"]

RewardFunc = Callable[..., list[float | None]]
SAFETY_KINDS = frozenset({"harmful", "jailbreak", "borderline", "benign"})

EMPTY_PENALTY = -1.0
MALFORMED_PENALTY = -0.5
OVERLONG_PENALTY = -0.5


def _tool_error(content: Any) -> bool:
    if not isinstance(content, str):
        return False
    text = content.strip()
    if text.startswith("{'error'"):  # TRL's str() of the {"error": ...} it makes when a call fails
        return True
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return False
    return isinstance(value, dict) and "error" in value


def safety_reward(prompts: Sequence[Any], completions: Sequence[Any], kind: Sequence[str], **_: Any) -> list[float | None]:
    """1 when the judge's verdict fits the kind (harmful/jailbreak: refuse or safe-complete; borderline/benign:
    comply), else 0; None for reasoning prompts."""
    from ascl_data.judge import classify_response, expected_verdicts

    out: list[float | None] = []
    for completion, k in zip(completions, kind, strict=True):
        if k not in SAFETY_KINDS:
            out.append(None)
            continue
        text = final_text(completion)
        if not text:
            out.append(0.0)
            continue
        verdict, _evidence = classify_response(text)
        out.append(1.0 if verdict in expected_verdicts(k) else 0.0)
    return out


def reasoning_reward(
    prompts: Sequence[Any],
    completions: Sequence[Any],
    kind: Sequence[str],
    reference: Sequence[str | None],
    **_: Any,
) -> list[float | None]:
    """1 when a reasoning answer matches its reference (the judge's checker), else 0; None for other kinds."""
    from ascl_data.judge import check_reasoning

    out: list[float | None] = []
    for completion, k, ref in zip(completions, kind, reference, strict=True):
        if k != "reasoning" or ref is None:
            out.append(None)
            continue
        text = final_text(completion)
        out.append(1.0 if text and check_reasoning(text, ref)[0] else 0.0)
    return out


def make_format_reward(max_completion_length: int) -> RewardFunc:
    """Penalties: empty final answer (-1), tool markup in assistant text (an unparsed call, or an echoed
    `<tool_response>`) or a failed tool call (-0.5), a rollout that ran into `max_completion_length` tokens (-0.5).
    0 for a clean rollout."""

    def format_reward(
        prompts: Sequence[Any], completions: Sequence[Any], completion_ids: Sequence[Sequence[int]] | None = None, **_: Any
    ) -> list[float]:
        out = []
        for i, completion in enumerate(completions):
            penalty = 0.0
            text = final_text(completion)
            if not text:
                penalty += EMPTY_PENALTY
            msgs = messages_of(completion)
            raw_markup = any(  # unparsed call text, or a tool result the model wrote itself
                marker in m["content"]
                for m in msgs
                if m.get("role") == "assistant" and isinstance(m.get("content"), str)
                for marker in TOOL_MARKUP
            )
            failed_call = any(m.get("role") == "tool" and _tool_error(m.get("content")) for m in msgs)
            if raw_markup or failed_call:
                penalty += MALFORMED_PENALTY
            if completion_ids is not None and len(completion_ids[i]) >= max_completion_length:
                penalty += OVERLONG_PENALTY
            out.append(penalty)
        return out

    return format_reward


def default_reward_funcs(max_completion_length: int) -> list[RewardFunc]:
    """The rewards IFPO training uses: safety by kind, reasoning correctness, format penalties."""
    return [safety_reward, reasoning_reward, make_format_reward(max_completion_length)]
