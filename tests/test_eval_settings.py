"""`ascl-data eval`'s backend settings are checked by the backends' typed settings models, as the teacher's are, and
its judge options add to a judge section of either shape."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from ascl_data.cli import app
from ascl_data.errors import InputError
from ascl_data.evaluation import EvalSettings
from ascl_data.judge.config import JudgeConfig


@pytest.mark.parametrize(
    "backend, settings, named",
    [
        ("openai", {"max_retrys": 2}, r"backend_settings\.max_retrys\n.*the openai backend has no setting "
                                      r"'max_retrys'; did you mean 'max_retries'"),
        ("vllm", {"max_model_len": 0}, r"backend_settings\.max_model_len\n.*greater than or equal to 1"),
        ("openai", {"api_key": "sk-1"}, r"backend_settings\.api_key looks like a secret"),
        ("openai", {"model": "m"}, r"backend_settings\n.*model is eval's own option"),
    ],
)
def test_bad_backend_settings_name_the_setting(backend: str, settings: dict, named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        EvalSettings(model="m", backend=backend, backend_settings=settings)


def test_good_backend_settings_stay_as_written() -> None:
    settings = {"base_url": "http://10.0.0.1:8000/v1", "api_key_env": "EVAL_KEY"}
    assert EvalSettings(model="m", backend="openai", backend_settings=settings).backend_settings == settings


def test_an_unknown_backend_setting_on_the_command_line_is_named() -> None:
    args = ["eval", "--model", "m", "--backend", "openai", "--suite", "xstest", "--backend-setting", "foo=1"]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, InputError)
    assert "--backend-setting foo: the openai backend has no setting 'foo'" in str(result.exception)


def test_judge_options_add_to_a_model_judge_section(tmp_path: Path) -> None:
    from ascl_data.judge.config import with_options

    section = {"model_judge": {"backend": "openai", "model": "a", "settings": {"max_retries": 2}}}
    merged = with_options(section, {"model_judge_format": "wildguard",
                                    "backend_settings": {"model": "b", "base_url": "http://h:1/v1"}})
    assert merged == {"model_judge": {"backend": "openai", "model": "b", "format": "wildguard",
                                      "settings": {"max_retries": 2, "base_url": "http://h:1/v1"}}}
    # no model judge in the config: the command line's options make the section (not the deprecated flat keys)
    made = with_options({"uncertain": [0.2, 0.8]}, {"backend": "openai", "model_judge_mode": "band",
                                                    "backend_settings": {"model": "b"}})
    assert made == {"uncertain": [0.2, 0.8], "model_judge": {"backend": "openai", "mode": "band", "model": "b"}}
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert JudgeConfig.model_validate(made).model_judge.model == "b"
    # a config written in the flat shape of before: the options join it as flat keys
    flat = with_options({"model_judge": False}, {"backend": "openai", "backend_settings": {"model": "b"}})
    assert flat == {"backend": "openai", "model_judge": True, "backend_settings": {"model": "b"}}
    config = tmp_path / "eval.yaml"  # an eval config with a judge section, and a judge setting on the command line
    config.write_text(yaml.safe_dump({"model": "m", "benchmarks": ["xstest"], "judge": section}))
    result = CliRunner().invoke(app, ["eval", "--config", str(config), "--judge-setting", "max_retrys=1"])
    assert isinstance(result.exception, InputError)
    assert "--judge-setting max_retrys: the openai backend has no setting" in str(result.exception)


def test_the_backend_is_one_of_the_one_list_of_backend_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """eval's `backend` is checked against `backends.names.BACKENDS`, not a list of its own: a backend added there is
    one eval takes, and an unknown one is an error naming the field, the known names and a close match."""
    from ascl_data.backends.names import BACKENDS

    with pytest.raises(ValidationError, match=r"backend\n.*unknown backend 'vlm'; it is one of 'transformers', "
                                              r"'openai' or 'vllm' \(did you mean 'vllm'\?\)"):
        EvalSettings(model="m", backend="vlm")
    assert EvalSettings(model="m").backend == "transformers"
    monkeypatch.setitem(BACKENDS, "sglang", "somewhere:SGLangBackend")
    assert EvalSettings(model="m", backend="sglang").backend == "sglang"
