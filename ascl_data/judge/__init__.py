"""Judging traces: a fast rule-based refusal classifier, an optional model judge, behavioural checks by prompt
kind, and reasoning answers checked against the reference with `math_verify`.

The build pipeline uses `Judge`; RL rewards use the same pieces (`classify_response`, `assess_response`,
`check_reasoning`), so training rewards and dataset filtering agree.
"""

from ascl_data.judge.behaviour import (
    Assessment,
    Judge,
    JudgeConfig,
    assess_response,
    expected_verdicts,
    rejection_reason,
)
from ascl_data.judge.model_judge import DEFAULT_RUBRIC, ModelAssessment, ModelJudge, parse_judge_output
from ascl_data.judge.reasoning import check_reasoning
from ascl_data.judge.refusal import classify_response

__all__ = [
    "Assessment",
    "DEFAULT_RUBRIC",
    "Judge",
    "JudgeConfig",
    "ModelAssessment",
    "ModelJudge",
    "assess_response",
    "check_reasoning",
    "classify_response",
    "expected_verdicts",
    "parse_judge_output",
    "rejection_reason",
]
