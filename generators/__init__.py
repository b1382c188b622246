"""Generators: each turns prompt records into traces by driving a teacher through the tool loop. They are found
through the `ascl_data.generators` entry-point group (see `registry.py`)."""

from ascl_data.generators.base import Generator
from ascl_data.generators.registry import available_generators, get_generator

__all__ = ["Generator", "available_generators", "get_generator"]
