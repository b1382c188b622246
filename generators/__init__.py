"""Generators: each turns prompt records into traces by driving a teacher through the tool loop."""

from ascl_data.generators.base import Generator
from ascl_data.generators.jailbreak import JAILBREAK_STYLES, wrap_all, wrap_jailbreak
from ascl_data.generators.registry import available_generators, get_generator

__all__ = ["JAILBREAK_STYLES", "Generator", "available_generators", "get_generator", "wrap_all", "wrap_jailbreak"]
