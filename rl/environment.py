"""Reading rollouts back: the final answer, and whether the rule tool was called (IFPO's mode).

Training needs no environment object: GRPOTrainer takes `tools=[RuleTool(ruleset).as_function()]`, the same tool
generation and evaluation call, and the `rl` split's prompts carry their system message.
"""

from __future__ import annotations

from typing import Any

from ascl_data.rule_tool import TOOL_NAME


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
