"""Judging responses: one assessment (`assess_response`, configured by `JudgeConfig`) used by the build's filter
(`Judge`), the RL rewards and eval. It combines a fast rule-based refusal classifier, an optional model judge (a
rubric-prompted LLM, Llama Guard 3, WildGuard or Qwen3Guard) and, for reasoning prompts, `math_verify` against the
reference.
"""

from ascl_data.lazy import lazy_exports

_EXPORTS = {
    "AGREEMENT": "ascl_data.judge.behaviour",
    "Assessment": "ascl_data.judge.behaviour",
    "Judge": "ascl_data.judge.behaviour",
    "assess_response": "ascl_data.judge.behaviour",
    "expected_verdicts": "ascl_data.judge.behaviour",
    "in_band": "ascl_data.judge.behaviour",
    "judge_config_for": "ascl_data.judge.behaviour",
    "rejection_reason": "ascl_data.judge.behaviour",
    "JUDGE_CONFIG_FILE": "ascl_data.judge.config",
    "JudgeConfig": "ascl_data.judge.config",
    "DEFAULT_RUBRIC": "ascl_data.judge.model_judge",
    "FORMATS": "ascl_data.judge.model_judge",
    "ModelAssessment": "ascl_data.judge.model_judge",
    "ModelJudge": "ascl_data.judge.model_judge",
    "parse_judge_output": "ascl_data.judge.model_judge",
    "check_reasoning": "ascl_data.judge.reasoning",
    "classify_response": "ascl_data.judge.refusal",
    "partial_refusal": "ascl_data.judge.refusal",
    "refusal_probability": "ascl_data.judge.refusal",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
