"""Recipes: every class of bad recipe fails before any teacher call, naming the file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ascl_data.errors import InputError, load_yaml_model
from ascl_data.pipeline import check_recipe
from ascl_data.recipe import Recipe, load_recipe

REPO = Path(__file__).resolve().parents[1]


def write_recipe(tmp_path: Path, **overrides) -> Path:
    prompts = tmp_path / "prompts.jsonl"
    if not prompts.exists():
        prompts.write_text(json.dumps({"prompt": "What is the capital of France?", "kind": "benign"}) + "\n")
    data = {
        "name": "t",
        "seed": 1,
        "sources": [{"path": "prompts.jsonl"}],
        "output": {"dir": "out"},
    }
    data.update(overrides)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def problems(exc: pytest.ExceptionInfo) -> str:
    return str(exc.value)


def test_shipped_recipes_validate() -> None:
    quick = load_recipe(REPO / "configs" / "quickstart.yaml")
    assert quick.teacher.backend == "transformers"
    assert Path(quick.output.dir).is_absolute()
    # the Hub example names a user's own CSV file, so only its schema is checked here
    hub = load_yaml_model(REPO / "configs" / "example_hub.yaml", Recipe, "recipe")
    assert {s.adapter for s in hub.sources} >= {"wildjailbreak", "gsm8k"}
    assert hub.splits.by_count


def test_relative_paths_resolve_against_the_recipe(tmp_path: Path) -> None:
    recipe = load_recipe(write_recipe(tmp_path))
    assert recipe.sources[0].path == str(tmp_path / "prompts.jsonl")
    assert recipe.output.dir == str(tmp_path / "out")


def test_unknown_field_names_file_line_and_field(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, teacher={"backend": "transformers", "temprature": 0.3})
    with pytest.raises(InputError) as exc:
        load_recipe(path)
    text = problems(exc)
    line = next(i for i, l in enumerate(path.read_text().splitlines(), 1) if "temprature" in l)
    assert f"{path}:{line}" in text
    assert "teacher.temprature" in text


def test_bad_value_and_missing_field(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, teacher={"sampling": {"temperature": -1}})
    with pytest.raises(InputError, match=r"teacher\.sampling\.temperature"):
        load_recipe(path)
    data = yaml.safe_load(path.read_text())
    del data["output"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=r"output: Field required"):
        load_recipe(path)


def test_source_needs_exactly_one_origin_and_known_adapter(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"sources\.0: .*exactly one of `dataset`"):
        load_recipe(write_recipe(tmp_path, sources=[{"dataset": "org/x", "path": "prompts.jsonl"}]))
    with pytest.raises(InputError, match=r"unknown adapter 'wildjailbrake'"):
        load_recipe(write_recipe(tmp_path, sources=[{"adapter": "wildjailbrake", "dataset": "a/b"}]))
    with pytest.raises(InputError, match=r"set `columns.prompt`"):
        load_recipe(write_recipe(tmp_path, sources=[{"dataset": "org/x", "kind": "benign"}]))


def test_missing_local_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"recipe\.yaml:\d+: sources\.0\.path: no file matches"):
        check_recipe(write_recipe(tmp_path, sources=[{"path": "nope.jsonl"}]))


def test_splits_must_be_consistent(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="sum to 1"):
        load_recipe(write_recipe(tmp_path, splits={"sft": 0.5, "rl": 0.2}))
    with pytest.raises(InputError, match="mix of counts and fractions"):
        load_recipe(write_recipe(tmp_path, splits={"sft": 100, "rl": 0.5}))
    assert load_recipe(write_recipe(tmp_path, splits={"sft": 10, "rl": 5, "eval": 0})).splits.by_count


def test_secrets_are_refused_in_recipes(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"api_key_env"):
        load_recipe(write_recipe(tmp_path, teacher={"backend": "openai", "settings": {"api_key": "sk-123"}}))
    with pytest.raises(InputError, match=r"not an environment variable name"):
        load_recipe(write_recipe(tmp_path, teacher={"backend": "openai", "api_key_env": "sk-abc123-secret"}))


def test_unknown_generator_and_ruleset(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        check_recipe(write_recipe(tmp_path, generators=[{"name": "adaptiv"}], ruleset="no-such-book"))
    text = problems(exc)
    assert "generators.0.name" in text and "unknown generator" in text
    assert "ruleset" in text and "no rule book 'no-such-book'" in text


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nsources:\n  - path: [unclosed\noutput: {dir: o}\n")
    with pytest.raises(InputError, match=rf"{path}:\d+: not valid YAML"):
        load_recipe(path)


def test_fingerprint_follows_content_not_output() -> None:
    a = Recipe.model_validate({"name": "a", "sources": [{"path": "x.jsonl"}], "output": {"dir": "o1"}})
    b = Recipe.model_validate({"name": "a", "sources": [{"path": "x.jsonl"}], "output": {"dir": "o2"}})
    c = Recipe.model_validate({"name": "a", "seed": 5, "sources": [{"path": "x.jsonl"}], "output": {"dir": "o1"}})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


# A recipe's fingerprint goes into its card and build state: a new version of the package must not change it for a
# recipe that did not change. These are the values the shipped recipes (and variants of each teacher backend) had
# when the teacher's settings were an untyped dict.
PUBLISHED_FINGERPRINTS = {
    "quickstart": "ce05d34530a31889",
    "example_hub": "5641d811af24d75b",
    "no_backend": "ce05d34530a31889",
    "openai_base_url": "cec6b8f41f8ab4b7",
    "vllm": "d05e325e47a9fb84",
}


def published_recipes() -> dict[str, dict]:
    import copy

    quick = yaml.safe_load((REPO / "configs" / "quickstart.yaml").read_text())
    hub = yaml.safe_load((REPO / "configs" / "example_hub.yaml").read_text())
    no_backend = copy.deepcopy(quick)
    del no_backend["teacher"]["backend"]
    one_url = copy.deepcopy(hub)
    one_url["teacher"]["settings"] = {"base_url": "http://10.0.0.1:8000/v1/", "max_retries": 2,
                                      "extra_body": {"top_k": 20}}
    vllm = copy.deepcopy(quick)
    vllm["teacher"] = {"backend": "vllm", "model": "Qwen/Qwen3-8B",
                       "settings": {"tensor_parallel_size": 1, "gpu_memory_utilization": 0.9, "max_model_len": 16384,
                                    "batch_size": 256, "engine_kwargs": {"enforce_eager": True}}}
    return {"quickstart": quick, "example_hub": hub, "no_backend": no_backend, "openai_base_url": one_url,
            "vllm": vllm}


@pytest.mark.parametrize("name", sorted(PUBLISHED_FINGERPRINTS))
def test_fingerprint_of_an_unchanged_recipe_stays_as_published(name: str) -> None:
    assert Recipe.model_validate(published_recipes()[name]).fingerprint() == PUBLISHED_FINGERPRINTS[name]


def test_fingerprint_of_the_quickstart_file_stays_as_published() -> None:
    assert load_recipe(REPO / "configs" / "quickstart.yaml").fingerprint() == PUBLISHED_FINGERPRINTS["quickstart"]


def test_recipe_is_a_pure_contract():
    """Reading a recipe imports no stage: the contract never depends on the engine (issue 9)."""
    import subprocess
    import sys

    code = "import sys, ascl_data.recipe; print(' '.join(sorted(m for m in sys.modules if m.startswith('ascl_data'))))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    stages = {"ascl_data.pipeline", "ascl_data.judge.behaviour", "ascl_data.sources.stream", "ascl_data.generators",
              "ascl_data.tool_loop", "ascl_data.rule_tool", "ascl_data.rulebook", "ascl_data.cache"}
    assert not {m for m in loaded if any(m == s or m.startswith(s + ".") for s in stages)}, loaded


# --------------------------------------------------------------------------- the teacher: one kind per backend


@pytest.mark.parametrize(
    "teacher, named",
    [
        ({"settings": {"batch_sise": 4}}, r"teacher\.settings\.batch_sise: the transformers backend has no setting "
                                          r"'batch_sise'; did you mean 'batch_size'\?"),
        ({"backend": "transformers", "settings": {"num_threads": 0}}, r"teacher\.settings\.num_threads: .*greater"),
        ({"backend": "openai", "model": "m", "settings": {"retries": 3}},
         r"teacher\.settings\.retries: the openai backend has no setting 'retries'; did you mean 'max_retries'\?"),
        ({"backend": "openai", "model": "m", "settings": {"base_url": "localhost:8000"}},
         r"teacher\.settings\.base_urls: 'localhost:8000' is not an http\(s\) URL"),
        ({"backend": "vllm", "model": "m", "settings": {"engine_args": {"enforce_eager": True}}},
         r"teacher\.settings\.engine_args: the vllm backend has no setting 'engine_args'; did you mean "
         r"'engine_kwargs'\?"),
        ({"backend": "vllm", "model": "m", "settings": {"gpu_memory_utilization": 1.5}},
         r"teacher\.settings\.gpu_memory_utilization: .*less than or equal to 1"),
        ({"backend": "opnai"}, r"teacher: backend: unknown teacher backend; it is one of 'transformers', 'openai'"),
        ({"backend": "openai", "settings": {"model": "m"}}, r"teacher\.settings: model is the teacher's own field"),
    ],
)
def test_a_bad_teacher_setting_fails_when_the_recipe_is_read(tmp_path: Path, teacher: dict, named: str) -> None:
    with pytest.raises(InputError, match=rf"recipe\.yaml:\d+: {named}"):
        load_recipe(write_recipe(tmp_path, teacher=teacher))


@pytest.mark.parametrize("teacher, field", [
    ({"backend": "transformers", "settings": {"devise": "cpu"}}, "teacher.settings.devise"),
    ({"backend": "openai", "model": "m", "settings": {"max_concurency": 8}}, "teacher.settings.max_concurency"),
    ({"backend": "vllm", "model": "m", "settings": {"tensor_parallel": 2}}, "teacher.settings.tensor_parallel"),
    ({"backend": "vllm"}, "teacher.model"),  # the engine needs a model: --check says so before any build
])
def test_build_check_names_a_bad_teacher_setting_without_a_traceback(tmp_path: Path, teacher: dict,
                                                                     field: str) -> None:
    from typer.testing import CliRunner

    from ascl_data.cli import app

    result = CliRunner().invoke(app, ["build", str(write_recipe(tmp_path, teacher=teacher)), "--check"])
    assert result.exit_code != 0 and isinstance(result.exception, InputError)
    assert field in str(result.exception) and "Traceback" not in result.output


def test_each_teacher_kind_has_its_typed_settings(tmp_path: Path) -> None:
    from ascl_data.backends.settings import OpenAIOptions, TransformersOptions, VLLMOptions
    from ascl_data.recipe import OpenAITeacher, TransformersTeacher, VLLMTeacher

    default = load_recipe(write_recipe(tmp_path)).teacher  # no teacher section: the embedded transformers teacher
    assert isinstance(default, TransformersTeacher) and isinstance(default.settings, TransformersOptions)
    quick = load_recipe(REPO / "configs" / "quickstart.yaml").teacher
    assert isinstance(quick, TransformersTeacher) and quick.settings.batch_size == 8 and quick.settings.seed_adapter
    hub = load_recipe(REPO / "configs" / "example_hub.yaml").teacher
    assert isinstance(hub, OpenAITeacher) and isinstance(hub.settings, OpenAIOptions)
    assert hub.settings.max_concurrency == 128 and len(hub.settings.base_urls) == 2
    vllm = load_recipe(write_recipe(tmp_path, teacher={"backend": "vllm", "model": "m",
                                                       "settings": {"engine_kwargs": {"enforce_eager": True}}})).teacher
    assert isinstance(vllm, VLLMTeacher) and isinstance(vllm.settings, VLLMOptions)
    assert vllm.settings.engine_kwargs == {"enforce_eager": True}  # vLLM's own engine arguments are open-ended


def test_the_teacher_backend_is_built_from_its_typed_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ascl_data.backends.openai_backend import OpenAIBackend
    from ascl_data.pipeline.job import make_teacher

    monkeypatch.setenv("TEACHER_KEY", "not-a-real-key")
    recipe = load_recipe(write_recipe(tmp_path, teacher={
        "backend": "openai", "model": "served-name", "api_key_env": "TEACHER_KEY",
        "settings": {"base_url": "http://127.0.0.1:9/v1/", "max_concurrency": 3, "timeout_s": 7}}))
    built = make_teacher(recipe.teacher, tmp_path / "cache.sqlite").inner
    assert isinstance(built, OpenAIBackend) and built.model == "served-name"
    s = built.settings
    assert (s.base_urls, s.max_concurrency, s.timeout_s, s.api_key_env) == (["http://127.0.0.1:9/v1"], 3, 7.0,
                                                                            "TEACHER_KEY")


def test_the_teacher_is_built_as_every_model_section_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The teacher's backend is made as the model judge's and the rater's are: by `backends.registry.build_backend`
    from the section's typed settings, with the section's role (who a refusal names)."""
    from ascl_data.backends import registry
    from ascl_data.pipeline.job import make_teacher

    made: list[tuple[str, dict]] = []

    class Recorder:
        name, model = "recorder", "m"

        def __init__(self, **settings: object) -> None:
            made.append(("made", settings))

    monkeypatch.setattr(registry, "backend_class", lambda name: Recorder)
    recipe = load_recipe(write_recipe(tmp_path, teacher={"backend": "vllm", "model": "m",
                                                         "settings": {"max_model_len": 4096}}))
    built = make_teacher(recipe.teacher, tmp_path / "cache.sqlite").inner
    assert isinstance(built, Recorder) and built.role == "teacher"
    ((_, settings),) = made
    assert settings["model"] == "m" and settings["max_model_len"] == 4096


def test_settings_models_match_the_backends_parameters() -> None:
    """The settings models are the backends' parameters, defaults included: a backend made by name gets the same
    values as one made from a recipe."""
    import inspect

    from ascl_data.backends.registry import backend_class
    from ascl_data.backends.settings import SETTINGS

    for name in ("transformers", "vllm"):
        params = {k: p for k, p in inspect.signature(backend_class(name).__init__).parameters.items() if k != "self"}
        fields = SETTINGS[name].model_fields
        assert set(params) == set(fields), name
        for key, p in params.items():
            if p.default is not inspect.Parameter.empty and key != "model":
                assert fields[key].get_default(call_default_factory=True) == p.default, f"{name}.{key}"


def test_one_api_key_env_check_everywhere(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from ascl_data.backends.openai_backend import OpenAISettings
    from ascl_data.judge.config import JudgeConfig

    message = "is not an environment variable name"
    with pytest.raises(InputError, match=rf"teacher\.api_key_env: {message}") as err:
        load_recipe(write_recipe(tmp_path, teacher={"backend": "openai", "api_key_env": "sk-abc123-secret"}))
    assert "abc123" not in str(err.value)  # the key itself is never echoed
    with pytest.raises(ValidationError, match=message):
        OpenAISettings(model="m", api_key_env="sk-abc123-secret")
    with pytest.raises(ValidationError, match=rf"backend_settings\.api_key_env\n.*{message}"):
        JudgeConfig(backend="openai", backend_settings={"model": "m", "api_key_env": "sk-abc123"})


def test_judge_backend_settings_are_checked_by_the_backends_settings_model(tmp_path: Path) -> None:
    judge = {"model_judge": True, "backend": "openai", "backend_settings": {"model": "j", "max_retrys": 2}}
    with pytest.raises(InputError, match=r"judge\.backend_settings\.max_retrys: the openai backend has no setting"):
        load_recipe(write_recipe(tmp_path, judge=judge))
    judge["backend_settings"] = {"model": "j", "base_url": "http://10.0.0.1:8000/v1", "api_key_env": "JUDGE_KEY"}
    assert load_recipe(write_recipe(tmp_path, judge=judge)).judge.backend_settings == judge["backend_settings"]
    rater = {"rater": {"enabled": True, "backend": "transformers", "backend_settings": {"batchsize": 2}}}
    with pytest.raises(InputError, match=r"quality\.rater\.backend_settings\.batchsize: .*did you mean 'batch_size'"):
        load_recipe(write_recipe(tmp_path, quality=rater))


def test_fingerprint_follows_a_setting_changed_after_loading() -> None:
    recipe = Recipe.model_validate(published_recipes()["quickstart"])
    changed = recipe.model_copy(deep=True)
    changed.teacher.settings.seed_adapter = False
    assert changed.fingerprint() != recipe.fingerprint() == PUBLISHED_FINGERPRINTS["quickstart"]
    changed.teacher.settings.seed_adapter = True  # as written in the file: the published hash again
    assert changed.fingerprint() == PUBLISHED_FINGERPRINTS["quickstart"]
