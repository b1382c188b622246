"""Publishing a built folder to the Hugging Face Hub: private by default, to a branch (revision) and with a tag.

The upload set is the folder minus build state (`.ascl/`: the teacher cache, chunk markers) and temporary files.
A dry run copies exactly that set to a folder, so what would be uploaded can be inspected. Tokens come from where
huggingface_hub looks (`HF_TOKEN`, the `hf auth login` / `huggingface-cli login` token file) and are passed only
to the Hub client, never written anywhere.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ascl_data.errors import InputError, Problem
from ascl_data.build.layout import Layout

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


@dataclass(frozen=True)
class PushResult:
    repo_id: str
    url: str | None
    files: list[str]
    dry_run_dir: Path | None = None


def check_repo_id(repo_id: str) -> None:
    if not REPO_ID.match(repo_id):
        raise InputError("push", [Problem(repo_id, "repo_id", "expected ORG/NAME (a Hub dataset repository id)")])


def upload_files(folder: Path) -> list[str]:
    """The relative paths that would be uploaded, sorted."""
    return Layout(folder).user_files()


def check_folder(folder: Path) -> list[str]:
    problems = []
    if not folder.is_dir():
        raise InputError("push", [Problem(str(folder), "", "not a folder")])
    files = upload_files(folder)
    if "README.md" not in files:
        problems.append(Problem(str(folder), "README.md", "no dataset card: is this a folder built by `ascl-data build`?"))
    if not any(f.endswith(".parquet") for f in files):
        problems.append(Problem(str(folder), "data", "no parquet shards to upload"))
    if problems:
        raise InputError("push", problems)
    return files


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = True,
    revision: str | None = None,
    tag: str | None = None,
    commit_message: str | None = None,
    dry_run: str | Path | None = None,
    token: str | None = None,
) -> PushResult:
    """Upload a built folder as a dataset repository (created private unless `private=False`)."""
    folder = Path(folder)
    check_repo_id(repo_id)
    files = check_folder(folder)
    if dry_run is not None:
        target = Path(dry_run)
        if target.exists() and any(target.iterdir()):
            raise InputError("push", [Problem(str(target), "--dry-run", "folder exists and is not empty")])
        for rel in files:
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / rel, dest)
        return PushResult(repo_id, None, files, target)

    from huggingface_hub import HfApi

    api = HfApi(token=token)  # None: huggingface_hub finds HF_TOKEN or the saved login itself
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if revision:
        api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=str(folder),
        revision=revision,
        allow_patterns=files,
        commit_message=commit_message or "Upload dataset built with ascl-data",
    )
    if tag:
        api.create_tag(repo_id, tag=tag, revision=revision, repo_type="dataset", exist_ok=True)
    return PushResult(repo_id, getattr(commit, "commit_url", None) or str(commit), files)
