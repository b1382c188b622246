"""`context_distillation`: the baseline (deliberative alignment, STAR-1, SafeChain). Every rule of the rule book is
in the system prompt and no tool is offered, so comparison datasets differ from `adaptive` in exactly that."""

from __future__ import annotations

from typing import Any, ClassVar

from ascl_data.generators.base import Generator
from ascl_data.rulebook import Ruleset

CD_HEADER = """\
You are a helpful, honest and harmless assistant. Follow the safety rules below. Reason about which rules apply, \
then answer: help fully when the request is allowed; give a safe, useful answer to the allowed part when only part \
of it is; decline briefly, say why, and offer a safer alternative when it is not allowed.

# Safety rules: {name} (version {version})
"""


def render_rules(ruleset: Ruleset, include_cases: bool = True) -> str:
    """The whole rule book, compactly: one section per category, one bullet per rule with its cases."""
    lines = []
    for cat in ruleset.categories:
        rules = [r for r in ruleset.rules if r.category == cat.id]
        if not rules:
            continue
        lines.append(f"\n## {cat.title} ({cat.id})")
        for rule in rules:
            lines.append(f"- [{rule.id}] {rule.title}: {' '.join(rule.text.split())}")
            if include_cases:
                lines.append(f"  Allowed: {'; '.join(rule.allowed)}")
                lines.append(f"  Not allowed: {'; '.join(rule.disallowed)}")
                for case in rule.borderline:
                    lines.append(f"  Borderline: \"{case.request}\" -> {case.allowed}")
    return "\n".join(lines).strip("\n")


class ContextDistillationGenerator(Generator):
    """All rules in the system prompt, no tool; `include_cases: false` drops the examples to save tokens."""

    name: ClassVar[str] = "context_distillation"
    OPTIONS: ClassVar[dict[str, Any]] = {"include_cases": True}

    def __init__(self, rule_tool, *, max_turns: int = 1, max_tool_calls: int = 0, **kwargs: Any):
        super().__init__(rule_tool, max_turns=max_turns, max_tool_calls=max_tool_calls, **kwargs)

    def tools(self) -> list[dict[str, Any]]:
        return []

    def default_system_prompt(self) -> str:
        header = CD_HEADER.format(name=self.ruleset.name, version=self.ruleset.version)
        return header + render_rules(self.ruleset, bool(self.options["include_cases"]))
