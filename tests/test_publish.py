"""Publishing: the dry run writes exactly the upload set; pushes are private by default with branch and tag;
tokens and API keys never reach the dataset, card, cache or logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ascl_data.cli import app
from ascl_data.errors import InputError
from ascl_data.publish import push_folder, upload_files

HF_SECRET = "hf_secretTOKEN0123456789abcdefXYZ"
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
        recipe = make_recipe(tmp, tiny_model_dir, judge={"model_judge": False})
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
        assert (target / rel).read_bytes() == (out / rel).read_bytes()


class RecordingHfApi:
    """Test double for `huggingface_hub.HfApi`: the Hub is not reachable from the test machines."""

    calls: list[tuple[str, dict]] = []

    def __init__(self, token=None):
        self.calls.append(("init", {"token": token}))

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))

    def create_branch(self, repo_id, **kw):
        self.calls.append(("create_branch", {"repo_id": repo_id, **kw}))

    def upload_folder(self, **kw):
        self.calls.append(("upload_folder", kw))
        return "https://huggingface.co/datasets/x/commit/abc"

    def create_tag(self, repo_id, **kw):
        self.calls.append(("create_tag", {"repo_id": repo_id, **kw}))


def test_push_is_private_by_default_with_revision_and_tag(built_with_secrets, monkeypatch) -> None:
    import huggingface_hub

    out, _ = built_with_secrets
    RecordingHfApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHfApi)
    push_folder(out, "my-org/ascl-test", revision="v1-branch", tag="v1.0")
    calls = dict(RecordingHfApi.calls)
    assert calls["init"]["token"] is None  # huggingface_hub finds HF_TOKEN / the saved login itself
    assert calls["create_repo"]["private"] is True and calls["create_repo"]["repo_type"] == "dataset"
    assert calls["create_branch"]["branch"] == "v1-branch"
    assert calls["upload_folder"]["revision"] == "v1-branch"
    assert calls["upload_folder"]["allow_patterns"] == upload_files(out)
    assert calls["create_tag"]["tag"] == "v1.0"
    RecordingHfApi.calls = []
    push_folder(out, "my-org/ascl-test", private=False)
    assert dict(RecordingHfApi.calls)["create_repo"]["private"] is False


def test_push_rejects_bad_targets(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expected ORG/NAME"):
        push_folder(tmp_path, "not a repo id")
    with pytest.raises(InputError, match="no dataset card"):
        push_folder(tmp_path, "org/name")
