"""`adaptive`: the ASCL trace. The teacher may consult the rule book through `retrieve_safety_rules` when it is
unsure, and decides itself whether to; the rules stay outside the model."""

from __future__ import annotations

from typing import Any, ClassVar

from ascl_data.generators.base import Generator
from ascl_data.prompts import adaptive_system_prompt


class AdaptiveGenerator(Generator):
    """Offers the rule tool; the teacher decides whether to consult (a `consulted` flag per trace records it)."""

    name: ClassVar[str] = "adaptive"
    OPTIONS: ClassVar[dict[str, Any]] = {"strict_schema": False}

    def tools(self) -> list[dict[str, Any]]:
        return [self.rule_tool.schema(strict=bool(self.options["strict_schema"]))]

    def default_system_prompt(self) -> str:
        return adaptive_system_prompt(self.ruleset)
