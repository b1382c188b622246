"""`adaptive`: the ASCL trace. The teacher may consult the rule book through `retrieve_safety_rules` when it is
unsure, and decides itself whether to; the rules stay outside the model."""

from __future__ import annotations

from typing import Any, ClassVar

from ascl_data.generators.base import Generator
from ascl_data.rule_tool import TOOL_NAME

ADAPTIVE_SYSTEM_PROMPT = """\
You are a helpful, honest and harmless assistant.

You can call the tool `{tool}` to look up the safety rules of the rule book "{ruleset}" (version {version}). \
Call it only when you are unsure whether or how to help: the request may be harmful, borderline, or touch a \
sensitive area. Most requests are ordinary; answer those directly and helpfully, without calling the tool.

When you have read the rules, decide: help fully when the request is allowed; give a safe, useful answer to the \
allowed part when only part of it is; decline briefly, say why, and offer a safer alternative when it is not allowed. \
Do not over-refuse: a sensitive topic alone is not a reason to decline."""


class AdaptiveGenerator(Generator):
    """Offers the rule tool; the teacher decides whether to consult (a `consulted` flag per trace records it)."""

    name: ClassVar[str] = "adaptive"
    OPTIONS: ClassVar[dict[str, Any]] = {"strict_schema": False}

    def tools(self) -> list[dict[str, Any]]:
        return [self.rule_tool.schema(strict=bool(self.options["strict_schema"]))]

    def default_system_prompt(self) -> str:
        return ADAPTIVE_SYSTEM_PROMPT.format(tool=TOOL_NAME, ruleset=self.ruleset.name, version=self.ruleset.version)
