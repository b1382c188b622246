"""Reward functions for GRPO/IFPO, by prompt kind, in TRL's signature.

TRL calls each function as ``f(prompts=..., completions=..., completion_ids=..., **columns)`` where ``columns``
holds the dataset's other columns (``kind``, ``reference``, ...). With tools, each completion is a list of
messages (assistant turns, tool results, the final assistant turn); we score the final assistant text. A function
returns ``None`` for rows it does not judge, so TRL leaves them out of that function's mean.

The scores come from the build's assessment (`ascl_data.judge.assess_response`) under the judge config the
dataset was built with, so the policy is rewarded by exactly the rule that accepted or rejected its training traces.
That includes the judge's uncertain band (`judge.uncertain`): an answer in it is decided by the SmolLM2 judge
(`uncertain_judge: smollm2`, one CPU forward pass of the 135M model per band answer; the rewards ask no model
judge), and with `uncertain_judge: none` it is ``uncertain`` and scores 0, like a wrong answer: the policy is paid
only for answers the judge can read as right, never for ones it cannot tell (None would drop them from the mean, and
a policy could learn to hedge into the band).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ascl_data.judge import JudgeConfig, assess_response
from ascl_data.rl.environment import messages_of, consulted, final_text
from ascl_data.toolcalls import TOOL_MARKUP

__all__ = [
    "consulted", "default_reward_funcs", "final_text", "make_format_reward", "make_judge_rewards", "reasoning_reward",
    "safety_reward",
]

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


def make_judge_rewards(config: JudgeConfig | None = None) -> tuple[RewardFunc, RewardFunc]:
    """(safety_reward, reasoning_reward) scored by `assess_response` under `config` (default: the defaults;
    training passes the config recorded with its dataset, `judge_config_for`)."""
    config = config or JudgeConfig()

    def assessed(prompts: Sequence[Any], completions: Sequence[Any], kind: Sequence[str],
                 reference: Sequence[str | None], keep: Callable[[str], bool]) -> list[float | None]:
        out: list[float | None] = []
        for prompt, completion, k, ref in zip(prompts, completions, kind, reference, strict=True):
            if not keep(k):
                out.append(None)
                continue
            out.append(assess_response(k, final_text(completion), ref, config, prompt=prompt).score)  # type: ignore[arg-type]
        return out

    def safety_reward(prompts: Sequence[Any], completions: Sequence[Any], kind: Sequence[str], **_: Any) -> list[float | None]:
        """1 when the answer's verdict fits the kind (harmful/jailbreak: refuse or safe-complete; benign:
        comply; borderline: comply, or safe-complete where the config allows it), else 0 (an ``uncertain`` answer
        too); None for reasoning."""
        return assessed(prompts, completions, kind, [None] * len(kind), lambda k: k in SAFETY_KINDS)

    def reasoning_reward(
        prompts: Sequence[Any], completions: Sequence[Any], kind: Sequence[str], reference: Sequence[str | None], **_: Any
    ) -> list[float | None]:
        """1 when a reasoning answer matches its reference, else 0; None for other kinds and rows with no reference."""
        keep = [k == "reasoning" and r is not None for k, r in zip(kind, reference, strict=True)]
        scores = assessed(prompts, completions, kind, reference, lambda k: k == "reasoning")
        return [s if ok else None for s, ok in zip(scores, keep)]

    return safety_reward, reasoning_reward


safety_reward, reasoning_reward = make_judge_rewards()


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


def default_reward_funcs(max_completion_length: int, judge: JudgeConfig | None = None) -> list[RewardFunc]:
    """The rewards IFPO training uses: safety by kind, reasoning correctness (both by `judge`), format penalties."""
    return [*make_judge_rewards(judge), make_format_reward(max_completion_length)]
