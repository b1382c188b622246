"""Deprecated name: evaluation is not RL, so it lives in `ascl_data.evaluation`. This module hands the old imports
on (`ascl_data.rl.evaluate` and its submodules) with a DeprecationWarning; it will be removed."""

from __future__ import annotations

import importlib
import sys
import warnings

from ascl_data.evaluation import *  # noqa: F403
from ascl_data.evaluation import __all__  # noqa: F401

warnings.warn("ascl_data.rl.evaluate is now ascl_data.evaluation", DeprecationWarning, stacklevel=2)
for _name in ("benchmarks", "metrics", "report", "run", "scoring", "settings"):
    sys.modules[f"{__name__}.{_name}"] = importlib.import_module(f"ascl_data.evaluation.{_name}")
