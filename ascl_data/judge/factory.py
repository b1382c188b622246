"""Building the recipe's judge: the rule-based checks, plus a model judge where the recipe configures one."""

from __future__ import annotations

from ascl_data.backends import build_backend
from ascl_data.cache import CachedBackend, RequestCache
from ascl_data.judge.behaviour import Judge, JudgeConfig
from ascl_data.judge.model_judge import ModelJudge


def make_judge(config: JudgeConfig, cache: RequestCache) -> Judge:
    """The judge; a model judge's backend goes through the same request cache as the teacher, so a resumed build
    repeats no judge call either."""
    model_judge = None
    if config.model_judge is not None:
        inner = build_backend(config.model_judge, role="judge")  # typed settings; errors name judge.model_judge.*
        model_judge = ModelJudge.from_config(CachedBackend(inner, cache), config)
    return Judge(config, model_judge=model_judge)
