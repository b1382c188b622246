"""Publishing: the dry run writes exactly the upload set; pushes are private by default with branch and tag, in one
commit that removes the stale shards of an earlier push; rejects go without the teacher's raw output unless asked;
the card's Hub metadata is checked before the build and the token before the first teacher call; tokens and API
keys never reach the dataset, card, cache or logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ascl_data.cli import app
from ascl_data.errors import HubError, InputError
from ascl_data.publish import apply_commit, check_token, plan_commit, push_folder, upload_files, upload_set

HF_SECRET = "hf_secretTOKEN0123456789abcdefXYZ"
GATED_CARD = {
    "pretty_name": "Tiny test build",
    "task_ids": ["dialogue-modeling"],
    "extra_gated_prompt": "You agree not to use the harmful prompts to cause harm.",
    "extra_gated_fields": {"Affiliation": "text", "Use": {"type": "select", "options": ["Research", "Education"]},
                           "I agree to use this dataset for safety research only": "checkbox"},
    "extra_gated_button_content": "Request access",
}
API_SECRET = "sk-secretKEY0123456789abcdefXYZ"


@pytest.fixture(scope="module")
def built_with_secrets(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Path, str]:
    """A real build with HF_TOKEN and an API key in the environment, the recipe naming the key's variable."""
    from helpers import make_recipe

    tmp = tmp_path_factory.mktemp("secret-build")
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_TOKEN", HF_SECRET)
    mp.setenv("MY_TEACHER_KEY", API_SECRET)
    try:
        recipe = make_recipe(tmp, tiny_model_dir, judge={"model_judge": False}, card=GATED_CARD)
        text = recipe.read_text().replace("teacher:\n", "teacher:\n  api_key_env: MY_TEACHER_KEY\n", 1)
        recipe.write_text(text)
        result = CliRunner().invoke(app, ["build", str(recipe)])
        assert result.exit_code == 0, result.output + repr(result.exception)
    finally:
        mp.undo()
    return tmp / "out", result.output


def test_secrets_never_reach_output_cache_or_log(built_with_secrets: tuple[Path, str]) -> None:
    out, log = built_with_secrets
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(".ascl" in p.parts and p.name.startswith("requests.sqlite") for p in files)  # the cache is checked too
    for path in files:
        data = path.read_bytes()
        for secret in (HF_SECRET, API_SECRET):
            assert secret.encode() not in data, f"{secret[:6]}... leaked into {path}"
    assert HF_SECRET not in log and API_SECRET not in log


def test_dry_run_writes_exactly_the_upload_set(built_with_secrets: tuple[Path, str], tmp_path: Path) -> None:

    out, _ = built_with_secrets
    target = tmp_path / "dry"
    result = CliRunner().invoke(app, ["push", str(out), "my-org/ascl-test", "--dry-run", str(target)])
    assert result.exit_code == 0, result.output
    sent = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert sent == upload_files(out)
    assert "README.md" in sent and any(s.startswith("data/") for s in sent) and "stats/stats.json" in sent
    assert not any(s.startswith(".ascl") for s in sent)  # build state and the teacher cache stay home
    for rel in sent:
        if not rel.startswith("rejects/") and rel != "README.md":  # adjusted for the Hub (tested below)
            assert (target / rel).read_bytes() == (out / rel).read_bytes()


def _rows(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def test_rejects_are_pushed_without_raw_output_unless_asked(built_with_secrets, tmp_path: Path) -> None:
    """The teacher's raw output (harmful text for harmful prompts) stays home by default; the reasons go."""
    from datasets import load_dataset
    from huggingface_hub import DatasetCard

    out, _ = built_with_secrets
    local = [r for shard in sorted((out / "rejects").glob("*.parquet")) for r in _rows(shard)]
    assert any(r["raw"] for r in local), "the build should keep raw outputs locally for audit"
    runner = CliRunner()
    for flags, name in (([], "default"), (["--rejects-raw"], "raw"), (["--no-rejects"], "none")):
        result = runner.invoke(app, ["push", str(out), "my-org/x", "--dry-run", str(tmp_path / name), *flags])
        assert result.exit_code == 0, result.output
    pushed = [r for shard in sorted((tmp_path / "default" / "rejects").glob("*.parquet")) for r in _rows(shard)]
    assert [(r["prompt_id"], r["kind"], r["stage"], r["reason"], r["attempts"]) for r in pushed] == \
        [(r["prompt_id"], r["kind"], r["stage"], r["reason"], r["attempts"]) for r in local]
    assert all(r["raw"] is None for r in pushed)
    card = DatasetCard.load(tmp_path / "default" / "README.md")
    assert "raw output is left out" in card.text
    assert 'load_dataset("my-org/x", split="sft")' in card.text  # the examples name the repository pushed to
    rejects = load_dataset(str(tmp_path / "default"), "rejects", split="rejects", cache_dir=str(tmp_path / "c1"))
    assert rejects.num_rows == len(local) and set(rejects["raw"]) == {None}
    for shard in (out / "rejects").glob("*.parquet"):  # asked for: the shards go as built
        assert (tmp_path / "raw" / "rejects" / shard.name).read_bytes() == shard.read_bytes()
    assert not (tmp_path / "none" / "rejects").exists()
    card = DatasetCard.load(tmp_path / "none" / "README.md")
    assert [c["config_name"] for c in card.data.configs] == ["sft", "rl"]
    assert "rejects" not in [i["config_name"] for i in card.data.dataset_info]
    assert '"rejects"' not in card.text and "| `rejects` |" not in card.text
    sft = load_dataset(str(tmp_path / "none"), split="sft", cache_dir=str(tmp_path / "c2"))
    assert sft.num_rows == sum(len(_rows(p)) for p in (out / "data").glob("sft-*.parquet"))
    both = runner.invoke(app, ["push", str(out), "my-org/x", "--dry-run", str(tmp_path / "b"), "--no-rejects",
                               "--rejects-raw"])
    assert isinstance(both.exception, InputError) and "contradict" in str(both.exception)


def test_gated_access_fields_reach_the_card_yaml(built_with_secrets) -> None:
    from huggingface_hub import DatasetCard

    out, _ = built_with_secrets
    meta = DatasetCard.load(out / "README.md").data.to_dict()
    for key in ("extra_gated_prompt", "extra_gated_fields", "extra_gated_button_content"):
        assert meta[key] == GATED_CARD[key]
    assert meta["task_ids"] == ["dialogue-modeling"]
    assert "extra_gated_heading" not in meta  # unset fields stay out of the header


class RecordingHfApi:
    """Test double for `huggingface_hub.HfApi`: the Hub is not reachable from the test machines. It records every
    call; `repo_files` is what the repository holds, `role` the token's role `whoami` reports."""

    calls: list[tuple[str, dict]] = []
    repo_files: list[str] = []
    role = "write"

    def __init__(self, token=None):
        self.calls.append(("init", {"token": token}))

    def whoami(self):
        self.calls.append(("whoami", {}))
        return {"name": "someone", "auth": {"type": "access_token", "accessToken": {"role": self.role}}}

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))

    def create_branch(self, repo_id, **kw):
        self.calls.append(("create_branch", {"repo_id": repo_id, **kw}))

    def list_repo_files(self, repo_id, **kw):
        self.calls.append(("list_repo_files", {"repo_id": repo_id, **kw}))
        return list(self.repo_files)

    def create_commit(self, **kw):
        self.calls.append(("create_commit", kw))
        return "https://huggingface.co/datasets/x/commit/abc"

    def create_tag(self, repo_id, **kw):
        self.calls.append(("create_tag", {"repo_id": repo_id, **kw}))


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> type[RecordingHfApi]:
    import huggingface_hub

    RecordingHfApi.calls, RecordingHfApi.repo_files, RecordingHfApi.role = [], [], "write"
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHfApi)
    return RecordingHfApi


def test_push_is_private_by_default_with_revision_and_tag(built_with_secrets, hub) -> None:
    out, _ = built_with_secrets
    push_folder(out, "my-org/ascl-test", revision="v1-branch", tag="v1.0")
    calls = dict(hub.calls)
    assert calls["init"]["token"] is None  # huggingface_hub finds HF_TOKEN / the saved login itself
    assert calls["create_repo"]["private"] is True and calls["create_repo"]["repo_type"] == "dataset"
    assert calls["create_branch"]["branch"] == "v1-branch"
    assert calls["list_repo_files"]["revision"] == "v1-branch"  # the files of the branch the commit goes to
    assert calls["create_commit"]["revision"] == "v1-branch"
    assert sorted(op.path_in_repo for op in calls["create_commit"]["operations"]) == upload_files(out)
    assert calls["create_tag"]["tag"] == "v1.0"
    hub.calls = []
    push_folder(out, "my-org/ascl-test", private=False)
    assert dict(hub.calls)["create_repo"]["private"] is False


def test_a_repush_deletes_exactly_the_stale_build_files(built_with_secrets, hub, tmp_path: Path) -> None:
    """An earlier push of a bigger build left shards this build does not have: the card's `data/sft-*.parquet`
    glob picks them up and `load_dataset` fails. The re-push deletes them, and only them, in its one commit."""
    import shutil

    from datasets import load_dataset
    from datasets.exceptions import NonMatchingSplitsSizesError
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    out, _ = built_with_secrets
    repo = tmp_path / "repo"  # the repository as an earlier push left it, plus files its owner added
    apply_commit(plan_commit(upload_set(out, "my-org/ascl-test"), []), repo)
    stale = ["data/sft-00009.parquet", "rejects/rejects-00009.parquet", "stats/old_plot.png"]
    shutil.copy(next((repo / "data").glob("sft-*.parquet")), repo / stale[0])
    shutil.copy(next((repo / "rejects").glob("*.parquet")), repo / stale[1])
    (repo / stale[2]).write_bytes(b"png")
    (repo / ".gitattributes").write_text("*.parquet filter=lfs diff=lfs merge=lfs -text\n")
    (repo / "LICENSE").write_text("my licence\n")
    (repo / "data" / "notes.txt").write_text("kept\n")
    with pytest.raises(NonMatchingSplitsSizesError):  # what a push that only uploads leaves behind
        load_dataset(str(repo), split="sft", cache_dir=str(tmp_path / "c1"))

    hub.repo_files = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())
    result = push_folder(out, "my-org/ascl-test")
    operations = dict(hub.calls)["create_commit"]["operations"]
    assert sorted(op.path_in_repo for op in operations if isinstance(op, CommitOperationDelete)) == sorted(stale)
    assert sorted(result.deleted) == sorted(stale)
    assert sorted(op.path_in_repo for op in operations if isinstance(op, CommitOperationAdd)) == upload_files(out)
    apply_commit(operations, repo)
    for kept in (".gitattributes", "LICENSE", "data/notes.txt"):
        assert (repo / kept).is_file()
    sft = load_dataset(str(repo), split="sft", cache_dir=str(tmp_path / "c2"))
    assert sft.num_rows == sum(len(_rows(p)) for p in (out / "data").glob("sft-*.parquet"))
    rl = load_dataset(str(repo), "rl", cache_dir=str(tmp_path / "c2"))
    assert set(rl) <= {"rl", "eval"} and rl


def test_push_rejects_bad_targets(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expected ORG/NAME"):
        push_folder(tmp_path, "not a repo id")
    with pytest.raises(InputError, match="no dataset card"):
        push_folder(tmp_path, "org/name")


def test_a_read_only_token_is_refused_before_the_build(hub) -> None:
    hub.role = "read"
    with pytest.raises(HubError, match="read-only"):
        check_token("my-org/x")
    hub.role = "write"
    assert check_token("my-org/x") == "someone"


@pytest.fixture
def recipe(tmp_path: Path, tiny_model_dir: Path) -> Path:
    from helpers import make_recipe

    return make_recipe(tmp_path, tiny_model_dir)


@pytest.mark.parametrize("setup", ["offline", "no_token"])
def test_a_push_build_checks_the_token_before_any_teacher_call(recipe: Path, monkeypatch, setup: str) -> None:
    import huggingface_hub.constants as constants

    import ascl_data.pipeline.job as job

    teacher_calls = []
    monkeypatch.setattr(job, "make_teacher", lambda *a, **k: teacher_calls.append(a))
    if setup == "offline":
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        monkeypatch.setenv("HF_TOKEN", HF_SECRET)
        expect = "HF_HUB_OFFLINE is set"
    else:
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(recipe.parent / "no-token"))
        monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(recipe.parent / "no-tokens"))
        expect = "no Hub token found"
    result = CliRunner().invoke(app, ["build", str(recipe), "--push-to-hub", "my-org/x"])
    assert isinstance(result.exception, HubError), result.output  # `ascl-data` prints it as one line, exit 2
    assert expect in str(result.exception) and "before the build" in str(result.exception)
    assert HF_SECRET not in str(result.exception)
    assert teacher_calls == [] and not (recipe.parent / "out").exists()


def test_card_metadata_the_hub_refuses_fails_check_with_the_closest_value(tmp_path: Path, tiny_model_dir) -> None:
    from helpers import make_recipe

    recipe = make_recipe(tmp_path, tiny_model_dir, card={
        "license": "apache2.0", "task_categories": ["text-generation", "conversational"],
        "task_ids": ["dialogue-modelling"], "language": ["en", "english", "en-US"],
    })
    result = CliRunner().invoke(app, ["build", str(recipe), "--check"])
    assert isinstance(result.exception, InputError), result.output
    text = str(result.exception)
    assert "card.license: 'apache2.0' is not a licence id the Hub accepts; did you mean 'apache-2.0'?" in text
    assert "card.task_categories.1: 'conversational'" in text and "task id of 'text-generation'" in text
    assert "card.task_ids.0: 'dialogue-modelling'" in text and "did you mean 'dialogue-modeling'?" in text
    assert "card.language.1: 'english'" in text and "did you mean 'en' (English)?" in text
    assert "card.language.2: 'en-US'" in text and "'en'" in text
    assert "card.language.0" not in text and f"{recipe}:" in text  # the file (and line) of each problem
    good = make_recipe(tmp_path, tiny_model_dir, card={"license": "other", "license_name": "my-licence",
                                                       "task_ids": ["dialogue-modeling"], "language": ["en", "fr"]})
    assert CliRunner().invoke(app, ["build", str(good), "--check"]).exit_code == 0


def test_the_card_size_category_is_one_the_hub_knows() -> None:
    from ascl_data.pipeline.card import size_category
    from ascl_data.pipeline.check import hub_values

    allowed = hub_values()["size_categories"]
    assert {size_category(n) for n in (0, 999, 1_000, 50_000, 500_000, 5_000_000, 50_000_000)} <= set(allowed)


def test_a_gated_field_of_an_unknown_type_names_the_field(tmp_path: Path, tiny_model_dir) -> None:
    from helpers import make_recipe

    recipe = make_recipe(tmp_path, tiny_model_dir, card={"extra_gated_fields": {"Country": "dropdown",
                                                                                "Use": {"type": "select"}}})
    result = CliRunner().invoke(app, ["build", str(recipe), "--check"])
    assert isinstance(result.exception, InputError) and "card.extra_gated_fields" in str(result.exception)
    assert "'dropdown' is not one of" in str(result.exception)


def test_the_card_hub_fields_at_their_defaults_leave_an_older_builds_recipe_hash() -> None:
    """A build made before these card fields existed resumes without --overwrite (the hash is the one it had)."""
    from ascl_data.recipe import Recipe

    recipe = {"name": "a", "sources": [{"path": "x.jsonl"}], "output": {"dir": "o1"}}
    assert Recipe.model_validate(recipe).fingerprint() == "2665a5a95928495e"
    gated = Recipe.model_validate({**recipe, "card": {"extra_gated_prompt": "Agree to use it for research."}})
    assert gated.fingerprint() != "2665a5a95928495e"
