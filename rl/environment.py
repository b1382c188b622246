"""The rule-retrieval environment of RL rollouts: the same `RuleTool` that generation and evaluation call.

GRPOTrainer takes tools as plain Python functions (`tools=[...]`); `RuleTool.as_function()` is that function, so a
policy in training meets exactly the rule book and ranking the teacher met when the traces were built. This module
also reads rollouts back: the final answer, and whether the rule tool was called (IFPO's mode).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from datasets import Dataset

from ascl_data.prompts import adaptive_system_prompt
from ascl_data.rule_tool import TOOL_NAME, RuleTool
from ascl_data.rulebook import load_ruleset
from ascl_data.schemas import Ruleset


class RuleEnvironment:
    """A rule book, its retrieval tool, and the system prompt that offers the tool."""

    def __init__(self, ruleset: Ruleset | str = "default"):
        self.ruleset = load_ruleset(ruleset) if isinstance(ruleset, str) else ruleset
        self.rule_tool = RuleTool(self.ruleset)

    def tools(self) -> list[Callable[..., str]]:
        """For `GRPOTrainer(tools=...)`."""
        return [self.rule_tool.as_function()]

    def system_prompt(self, choice: str = "adaptive") -> str | None:
        """`adaptive`: the adaptive generator's prompt (what the traces were built with); `none`; or the text given."""
        if choice == "none":
            return None
        if choice == "adaptive":
            return adaptive_system_prompt(self.ruleset)
        return choice

    def with_system_prompt(self, ds: Dataset, choice: str = "adaptive") -> Dataset:
        """Prepend the system prompt to prompts that have no system turn (the build may store user turns only)."""
        text = self.system_prompt(choice)
        if text is None:
            return ds

        def add(row: dict[str, Any]) -> dict[str, Any]:
            prompt = list(row["prompt"])
            if not prompt or prompt[0]["role"] != "system":
                prompt = [{"role": "system", "content": text}, *prompt]
            return {"prompt": prompt}

        return ds.map(add)


def messages_of(completion: Any) -> list[dict[str, Any]]:
    """A completion as a list of messages (TRL gives a string for non-conversational prompts)."""
    if isinstance(completion, str):
        return [{"role": "assistant", "content": completion}]
    return list(completion or [])


def final_text(completion: Any) -> str:
    """The text of the last assistant turn; empty if the rollout ended on a tool call or a tool result."""
    msgs = messages_of(completion)
    if not msgs or msgs[-1].get("role") != "assistant":
        return ""
    content = msgs[-1].get("content") or ""
    if isinstance(content, list):  # content blocks
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content.strip()


def consulted(completion: Any) -> bool:
    """Did the rollout call the rule tool at least once (IFPO's ``consult`` mode)?"""
    for msg in messages_of(completion):
        for call in msg.get("tool_calls") or []:
            fn = call.get("function", call)
            if fn.get("name") == TOOL_NAME:
                return True
    return False
