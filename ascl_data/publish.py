"""Publishing a built folder to the Hugging Face Hub: private by default, to a branch (revision) and with a tag.

The upload set is the folder minus build state (`.ascl/`: the teacher cache, chunk markers) and temporary files.
A dry run copies exactly that set to a folder, so what would be uploaded can be inspected. Tokens come from where
huggingface_hub looks (`HF_TOKEN`, the `hf auth login` / `huggingface-cli login` token file) and are passed only
to the Hub client, never written anywhere.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ascl_data.build.layout import Layout
from ascl_data.errors import HubError, InputError, Problem
from ascl_data.secrets import scrub

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
    with _hub_step(repo_id, "create the repository", token):
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if revision:
        with _hub_step(repo_id, f"create the branch {revision!r}", token):
            api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
    with _hub_step(repo_id, "upload the files", token):
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=str(folder),
            revision=revision,
            allow_patterns=files,
            commit_message=commit_message or "Upload dataset built with ascl-data",
        )
    if tag:
        with _hub_step(repo_id, f"create the tag {tag!r} (the files are uploaded)", token):
            api.create_tag(repo_id, tag=tag, revision=revision, repo_type="dataset", exist_ok=True)
    return PushResult(repo_id, getattr(commit, "commit_url", None) or str(commit), files)


_HUB_HINTS = {
    401: "the Hub does not accept the token: log in with `hf auth login` or set HF_TOKEN",
    403: "the token may not write there: it needs write access to this repository or organisation",
    404: "no such repository or organisation, or the token cannot see it",
    409: "a conflict on the Hub (the branch or tag may exist at another commit)",
    429: "the Hub is rate-limiting this account: wait a few minutes and push again",
}


def _is_network_error(exc: BaseException) -> bool:
    """A failure to reach the Hub at all, whichever HTTP client huggingface_hub uses (requests, httpx...)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return isinstance(exc, OSError) or bool(names & {"TransportError", "RequestError", "ConnectionError", "Timeout"})


@contextmanager
def _hub_step(repo_id: str, step: str, token: str | None) -> Iterator[None]:
    """One Hub call: an HTTP error or an unreachable Hub becomes a `HubError` that says which step failed, why and
    what to do, with no token in it, instead of a traceback."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    secrets = [token] if token else []
    try:
        yield
    except OfflineModeIsEnabled:
        raise HubError(f"push to {repo_id}: cannot {step}: HF_HUB_OFFLINE is set; unset it to push") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        hint = _HUB_HINTS.get(status or 0, "the Hub failed: push again later" if (status or 0) >= 500 else "")
        detail = scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, secrets)
        message = f"push to {repo_id}: cannot {step}: HTTP {status}: {detail}" + (f". {hint}" if hint else "")
        raise HubError(message) from None
    except Exception as exc:
        if not _is_network_error(exc):
            raise
        raise HubError(f"push to {repo_id}: cannot {step}: the Hub cannot be reached ({scrub(str(exc), secrets)}); "
                       "check the network (or HF_ENDPOINT) and push again") from None
