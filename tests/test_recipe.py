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
