"""ascl-data: build, validate, publish and train on Adaptive Safe Context Learning datasets.

The public Python API, loaded on first use (so `import ascl_data` stays cheap)::

    from ascl_data import Build, load_recipe
    result = Build(load_recipe("recipe.yaml")).run()
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ascl_data.lazy import lazy_exports

try:
    __version__ = version("ascl-data")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_EXPORTS = {
    "Build": "ascl_data.pipeline",
    "BuildResult": "ascl_data.pipeline",
    "check_recipe": "ascl_data.pipeline",
    "Recipe": "ascl_data.recipe",
    "load_recipe": "ascl_data.recipe",
    "PromptRecord": "ascl_data.schemas",
    "Trace": "ascl_data.schemas",
    "Rejection": "ascl_data.schemas",
    "Ruleset": "ascl_data.rulebook",
    "load_ruleset": "ascl_data.rulebook",
    "RuleTool": "ascl_data.rule_tool",
    "Backend": "ascl_data.backends",
    "SamplingParams": "ascl_data.backends",
    "make_backend": "ascl_data.backends",
    "make_teacher": "ascl_data.pipeline.job",
    "Generator": "ascl_data.generators",
    "Judge": "ascl_data.judge",
    "make_judge": "ascl_data.judge.factory",
    "load_split": "ascl_data.rl.data",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = ["__version__", *sorted(_EXPORTS)]
