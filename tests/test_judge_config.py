"""The judge's model judge as a section, one kind per backend with typed settings (as the teacher), and the flat shape
of before, which still loads and hashes alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from ascl_data.backends.settings import OpenAIOptions
from ascl_data.errors import InputError
from ascl_data.judge.config import JUDGE_CONFIG_FILE, JudgeConfig, OpenAIJudge
from ascl_data.recipe import Recipe, load_recipe

ROOT = Path(__file__).resolve().parent.parent
FLAT = {"model_judge": True, "backend": "openai", "model_judge_format": "wildguard", "model_judge_mode": "agree",
        "backend_settings": {"model": "allenai/wildguard", "base_url": "http://10.0.0.1:8000/v1",
                             "api_key_env": "JUDGE_KEY", "max_retries": 2}}
SECTION = {"model_judge": {"backend": "openai", "model": "allenai/wildguard", "api_key_env": "JUDGE_KEY",
                           "settings": {"base_url": "http://10.0.0.1:8000/v1", "max_retries": 2},
                           "format": "wildguard", "mode": "agree"}}


def recipe_with(judge: dict) -> Recipe:
    recipe = yaml.safe_load((ROOT / "configs" / "quickstart.yaml").read_text())
    return Recipe.model_validate({**recipe, "judge": judge})


def test_a_model_judge_section_has_typed_settings() -> None:
    judge = JudgeConfig.model_validate(SECTION).model_judge
    assert isinstance(judge, OpenAIJudge) and isinstance(judge.settings, OpenAIOptions)
    assert judge.settings.base_urls == ["http://10.0.0.1:8000/v1"] and judge.settings.max_retries == 2
    assert (judge.format, judge.mode, judge.model, judge.api_key_env) == ("wildguard", "agree", "allenai/wildguard",
                                                                         "JUDGE_KEY")
    built = judge.backend_settings()  # what the backend is made with: the settings, the model and the key's variable
    assert built.model == "allenai/wildguard" and built.api_key_env == "JUDGE_KEY"  # type: ignore[attr-defined]


def test_the_flat_shape_of_before_loads_as_the_same_judge_with_a_deprecation_warning() -> None:
    with pytest.warns(DeprecationWarning, match="model_judge as a section"):
        flat = JudgeConfig.model_validate(FLAT)
    assert flat == JudgeConfig.model_validate(SECTION)
    assert flat.backend == "openai" and flat.backend_settings == FLAT["backend_settings"]  # as written
    assert (flat.model_judge_format, flat.model_judge_mode) == ("wildguard", "agree")


def test_a_recipe_hashes_alike_whichever_shape_its_judge_is_written_in() -> None:
    with pytest.warns(DeprecationWarning):
        assert recipe_with(FLAT).fingerprint() == recipe_with(SECTION).fingerprint()
    assert recipe_with({}).fingerprint() == recipe_with({"model_judge": False}).fingerprint()
    assert recipe_with({}).fingerprint() == recipe_with({"model_judge": None}).fingerprint()
    # a flat section whose model judge is off keeps its keys in the hash, as before
    with pytest.warns(DeprecationWarning):
        off = recipe_with({"model_judge": False, "model_judge_format": "wildguard"})
    assert off.fingerprint() != recipe_with({}).fingerprint() and off.judge.model_judge is None


def test_judge_json_of_either_shape_reads_back(tmp_path: Path) -> None:
    from ascl_data.judge import judge_config_for
    from ascl_data.pipeline.layout import write_judge_config

    (tmp_path / JUDGE_CONFIG_FILE).write_text(json.dumps(FLAT))  # an older build folder's
    with pytest.warns(DeprecationWarning):
        assert judge_config_for(tmp_path) == JudgeConfig.model_validate(SECTION)
    write_judge_config(tmp_path, JudgeConfig.model_validate(SECTION))  # written as a section now
    assert json.loads((tmp_path / JUDGE_CONFIG_FILE).read_text())["model_judge"]["backend"] == "openai"
    assert judge_config_for(tmp_path).model_dump() == JudgeConfig.model_validate(SECTION).model_dump()


@pytest.mark.parametrize(
    "judge, named",
    [
        ({"model_judge": {"backend": "opnai"}}, r"judge\.model_judge: backend: a missing or unknown judge backend; "
                                                r"it is one of 'transformers', 'openai' or 'vllm'"),
        ({"model_judge": {"model": "m"}}, r"judge\.model_judge: backend: a missing or unknown judge backend"),
        ({"model_judge": {"backend": "openai", "settings": {"max_retrys": 2}}},
         r"judge\.model_judge\.settings\.max_retrys: the openai backend has no setting 'max_retrys'; did you mean "
         r"'max_retries'"),
        ({"model_judge": {"backend": "openai", "settings": {"api_key": "sk-1"}}},
         r"judge\.model_judge\.settings: settings\.api_key looks like a secret"),
        ({"model_judge": {"backend": "openai", "settings": {"model": "m"}}},
         r"model is the model judge's own field: write it as judge\.model_judge\.model"),
        ({"model_judge": {"backend": "openai", "api_key_env": "sk-abc"}},
         r"judge\.model_judge\.api_key_env: is not an environment variable name"),
        ({"model_judge": {"backend": "openai", "format": "wildguard", "rubric": "Be strict."}},
         r"judge\.model_judge\.openai: rubric: only the rubric format takes a rubric"),
        ({"model_judge": {"backend": "openai", "mode": "band"}}, r"judge: model_judge\.mode: band asks"),
        ({"model_judge": {"backend": "openai"}, "rubric": "Be strict."},
         r"judge: rubric: with model_judge as a section, write it inside it"),
        # the flat shape: errors name the keys as written
        ({"model_judge": True}, r"judge: backend: model_judge is true but no judge backend is named"),
        ({"model_judge": True, "backend": "opnai"}, r"judge: backend: a missing or unknown judge backend"),
        ({"model_judge": True, "backend": "transformers", "backend_settings": {"batchsize": 2}},
         r"judge\.backend_settings\.batchsize: the transformers backend has no setting 'batchsize'; did you mean "
         r"'batch_size'"),
        ({"model_judge": True, "backend": "openai", "backend_settings": {"hf_token": "x"}},
         r"judge\.backend_settings: backend_settings\.hf_token looks like a secret"),
        ({"model_judge": True, "backend": "openai", "model_judge_mode": "vote"}, r"judge\.model_judge_mode: "),
        # a field beside the flat keys keeps its name
        ({"model_judge": True, "backend": "openai", "uncertain": [0.9, 0.1]}, r"judge\.uncertain: the band"),
    ],
)
def test_a_judge_that_does_not_fit_names_the_field_as_written(tmp_path: Path, judge: dict, named: str) -> None:
    recipe = yaml.safe_load((ROOT / "configs" / "quickstart.yaml").read_text())
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**recipe, "judge": judge}))
    with pytest.raises(InputError, match=named):
        load_recipe(path)


def test_the_judges_backend_is_built_from_its_typed_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from ascl_data.backends import registry
    from ascl_data.cache import RequestCache
    from ascl_data.judge.factory import make_judge

    made: list[dict] = []

    class Recorder:
        name, model = "recorder", "allenai/wildguard"

        def __init__(self, **settings: object) -> None:
            made.append(settings)

    monkeypatch.setattr(registry, "backend_class", lambda name: Recorder)
    judge = make_judge(JudgeConfig.model_validate(SECTION), RequestCache(None))
    assert judge.model_judge is not None and judge.model_judge.format.name == "wildguard"
    (settings,) = made
    assert settings["model"] == "allenai/wildguard" and settings["api_key_env"] == "JUDGE_KEY"
    assert settings["base_urls"] == ["http://10.0.0.1:8000/v1"] and settings["max_retries"] == 2
    with pytest.raises(InputError, match=r"judge\.model_judge\.model: the openai backend needs a model"):
        make_judge(JudgeConfig(model_judge={"backend": "openai"}), RequestCache(None))


def test_every_backend_has_a_kind_of_model_judge() -> None:
    from ascl_data.backends.names import BACKENDS
    from ascl_data.judge.config import MODEL_JUDGES

    assert set(MODEL_JUDGES) == set(BACKENDS)


def test_a_setting_named_per_token_is_not_taken_for_a_secret() -> None:
    """`chars_per_token` (an openai setting) ends in `_token` like `hf_token`: it was refused as a secret, so a
    teacher could not set it and a judge.json holding every setting could not be read back."""
    recipe = yaml.safe_load((ROOT / "configs" / "quickstart.yaml").read_text())
    teacher = {"backend": "openai", "model": "m", "settings": {"chars_per_token": 2.5}}
    assert Recipe.model_validate({**recipe, "teacher": teacher}).teacher.settings.chars_per_token == 2.5
    with pytest.raises(ValidationError, match="looks like a secret"):
        Recipe.model_validate({**recipe, "teacher": {**teacher, "settings": {"hf_token": "x"}}})
