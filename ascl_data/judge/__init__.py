"""Judging responses: one assessment (`assess_response`, configured by `JudgeConfig`) used by the build's filter
(`Judge`), the RL rewards and eval. It combines a fast rule-based refusal classifier, an optional model judge (a
rubric-prompted LLM, Llama Guard 3, WildGuard or Qwen3Guard) and, for reasoning prompts, `math_verify` against the
reference.
"""

from ascl_data.judge.behaviour import (
    AGREEMENT,
    JUDGE_CONFIG_FILE,
    Assessment,
    Judge,
    JudgeConfig,
    assess_response,
    expected_verdicts,
    judge_config_for,
    rejection_reason,
    write_judge_config,
)
from ascl_data.judge.model_judge import DEFAULT_RUBRIC, FORMATS, ModelAssessment, ModelJudge, parse_judge_output
from ascl_data.judge.reasoning import check_reasoning
from ascl_data.judge.refusal import classify_response

__all__ = [
    "AGREEMENT",
    "Assessment",
    "DEFAULT_RUBRIC",
    "FORMATS",
    "JUDGE_CONFIG_FILE",
    "Judge",
    "JudgeConfig",
    "ModelAssessment",
    "ModelJudge",
    "assess_response",
    "check_reasoning",
    "classify_response",
    "expected_verdicts",
    "judge_config_for",
    "parse_judge_output",
    "rejection_reason",
    "write_judge_config",
]
