"""Publishing a built folder to the Hugging Face Hub: private by default, to a branch (revision) and with a tag.

The upload set is the folder minus build state (`.ascl/`: the teacher cache, chunk markers) and temporary files.
The `rejects` split goes without the teacher's raw output unless asked (`rejects="raw"`), or not at all
(`rejects="none"`); the card is adjusted to say which. A push is one commit that adds the upload set and deletes
what an earlier push of a build left and this build no longer has (shards of a bigger build, a split now left
out): the card's `data/sft-*.parquet` globs would otherwise pick up the stale shards and `load_dataset` would fail
with `NonMatchingSplitsSizesError`. Files the user added to the repository (`.gitattributes`, a LICENSE) stay.

A dry run writes exactly that commit into an empty folder, so what would be uploaded can be inspected. Tokens come
from where huggingface_hub looks (`HF_TOKEN`, the `hf auth login` token file), are passed only to the Hub client,
never written anywhere; a build that will push checks its token (`check_token`) before the first teacher call.

Every Hub call has a deadline (`ASCL_HUB_TIMEOUT` seconds, default 120, for connecting and between bytes read or
written): huggingface_hub's own client waits forever, so a Hub, proxy or `HF_ENDPOINT` that takes the connection
and never answers would hang a push for good.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from ascl_data.pipeline.card import REJECTS_WHAT, REJECTS_WHAT_NO_RAW
from ascl_data.pipeline.layout import SHARD, Layout
from ascl_data.errors import HubError, InputError, Problem
from ascl_data.secrets import scrub

if TYPE_CHECKING:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
RejectsMode = Literal["redacted", "raw", "none"]  # the rejects split without raw output, as built, or left out
Upload = dict[str, Path | bytes]  # repository path -> a local file, or the bytes of an adjusted one


@dataclass(frozen=True)
class PushResult:
    repo_id: str
    url: str | None
    files: list[str]
    dry_run_dir: Path | None = None
    deleted: tuple[str, ...] = ()  # stale files of an earlier push that the commit removed


def check_repo_id(repo_id: str) -> None:
    if not REPO_ID.match(repo_id):
        raise InputError("push", [Problem(repo_id, "repo_id", "expected ORG/NAME (a Hub dataset repository id)")])


def upload_files(folder: Path) -> list[str]:
    """The relative paths of the folder that a push may upload, sorted."""
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
    problems += [Problem(str(folder), "", f"{damage}; run the same `ascl-data build` again first: it builds those "
                                          "chunks again (finished teacher calls come from the cache)")
                 for damage in Layout(folder).damaged_chunks()]
    if problems:
        raise InputError("push", problems)
    return files


def upload_set(folder: Path, repo_id: str, rejects: RejectsMode = "redacted") -> Upload:
    """What a push to `repo_id` sends: the folder's files, with the rejects shards stripped of raw output or left
    out as `rejects` says, and the card adjusted to match."""
    files = check_folder(folder)
    upload: Upload = {}
    for rel in files:
        is_reject_shard = rel.startswith("rejects/") and SHARD.match(rel.removeprefix("rejects/")) is not None
        if is_reject_shard and rejects == "none":
            continue
        upload[rel] = _without_raw(folder / rel) if is_reject_shard and rejects == "redacted" else folder / rel
    if rejects == "none" and not any(rel.endswith(".parquet") for rel in upload):
        raise InputError("push", [Problem(str(folder), "--no-rejects", "every prompt was rejected, so without the "
                                                                        "rejects there is nothing to push")])
    sizes = {rel: len(data) for rel, data in upload.items() if isinstance(data, bytes)}
    card = (folder / "README.md").read_text(encoding="utf-8")
    upload["README.md"] = _card_for_push(card, repo_id, rejects, sizes).encode()
    return upload


def _without_raw(path: Path) -> bytes:
    """A rejects shard with its `raw` column (the teacher's output, harmful text included) emptied: prompt id,
    kind, stage, reasons and usage stay, and so does the schema, so the split loads the same either way."""
    table = pq.read_table(path)
    if "raw" in table.column_names:
        i = table.column_names.index("raw")
        table = table.set_column(i, table.schema.field(i), pa.nulls(len(table), pa.string()))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _card_for_push(text: str, repo_id: str, rejects: RejectsMode, sizes: dict[str, int]) -> str:
    """The built card adjusted to what is pushed: its loading examples name `repo_id` (the build may not have
    known it); the `rejects` config is left out (its table row and loading line too), or gets the stripped
    shards' sizes and a description that says the raw output is left out."""
    from huggingface_hub import DatasetCard

    card = DatasetCard(text)
    card.text = re.sub(r'^((?:sft|prompts|rejects) = load_dataset\()"[^"]*"', rf'\1"{repo_id}"', card.text, flags=re.M)
    data = card.data
    configs, infos = getattr(data, "configs", None) or [], getattr(data, "dataset_info", None) or []
    if rejects == "none":
        if configs:
            data.configs = [c for c in configs if c.get("config_name") != "rejects"]
        if infos:
            data.dataset_info = [c for c in infos if c.get("config_name") != "rejects"]
        lines = card.text.splitlines(keepends=True)
        card.text = "".join(line for line in lines
                            if not line.startswith(("| `rejects` |", "rejects = load_dataset(")))
    elif rejects == "redacted":
        size = sum(sizes.values())
        for info in infos:
            if info.get("config_name") == "rejects":
                for split in info["splits"]:
                    split["num_bytes"] = size
                info["download_size"] = info["dataset_size"] = size
        card.text = card.text.replace(REJECTS_WHAT, REJECTS_WHAT_NO_RAW)
    return str(card)


def _written_by_a_build(path: str) -> bool:
    """A repository file that a push of a build put there (a shard by its name, stats), as opposed to one the user
    added: only these are deleted when the new build lacks them."""
    top, _, rest = path.partition("/")
    return (top in ("data", "rejects") and SHARD.match(rest) is not None) or top == "stats"


def plan_commit(upload: Upload, repo_files: list[str]) -> list[CommitOperationAdd | CommitOperationDelete]:
    """The one commit of a push: delete the stale build files among `repo_files`, then add the upload set."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    stale = sorted(f for f in repo_files if _written_by_a_build(f) and f not in upload)
    return [*(CommitOperationDelete(path_in_repo=f) for f in stale),
            *(CommitOperationAdd(path_in_repo=rel, path_or_fileobj=src) for rel, src in sorted(upload.items()))]


def apply_commit(operations: list[CommitOperationAdd | CommitOperationDelete], folder: Path) -> None:
    """Carry out a commit's operations on a local folder as the Hub would on the repository (the dry run)."""
    from huggingface_hub import CommitOperationDelete

    for op in operations:
        dest = folder / op.path_in_repo
        if isinstance(op, CommitOperationDelete):
            dest.unlink(missing_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(op.path_or_fileobj, bytes):
            dest.write_bytes(op.path_or_fileobj)
        else:
            shutil.copy2(op.path_or_fileobj, dest)


HUB_TIMEOUT_ENV = "ASCL_HUB_TIMEOUT"
HUB_TIMEOUT_S = 120.0


def hub_timeout() -> float:
    """Seconds a Hub call may wait to connect, or between bytes (`ASCL_HUB_TIMEOUT`, default 120)."""
    raw = os.environ.get(HUB_TIMEOUT_ENV)
    if raw is None:
        return HUB_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise InputError("push", [Problem(HUB_TIMEOUT_ENV, "", f"{raw!r} is not a number of seconds above 0")])
    return value


def check_token(repo_id: str, token: str | None = None) -> str:
    """Before a build that will push: the Hub knows the token and it may write. Fails with one message (no token,
    offline, refused, read-only) so that no teacher call is spent on a build that cannot be pushed; returns the
    account name."""
    from huggingface_hub import HfApi

    step = "check the token before the build"
    with _hub_step(repo_id, step, token):
        who = HfApi(token=token).whoami()
        role = ((who.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise HubError(f"push to {repo_id}: cannot {step}: the token is read-only; make a token with write access "
                       "(https://huggingface.co/settings/tokens) and log in with it")
    return str(who.get("name", ""))


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
    rejects: RejectsMode = "redacted",
) -> PushResult:
    """Upload a built folder as a dataset repository (created private unless `private=False`) in one commit that
    also removes the stale files of an earlier push."""
    folder = Path(folder)
    check_repo_id(repo_id)
    upload = upload_set(folder, repo_id, rejects)
    files = sorted(upload)
    if dry_run is not None:
        target = Path(dry_run)
        if target.exists() and not target.is_dir():
            raise InputError("push", [Problem(str(target), "--dry-run", "is a file; give a new or empty folder")])
        if target.exists() and any(target.iterdir()):
            raise InputError("push", [Problem(str(target), "--dry-run", "folder exists and is not empty")])
        apply_commit(plan_commit(upload, []), target)
        return PushResult(repo_id, None, files, target)

    from huggingface_hub import CommitOperationDelete, HfApi

    api = HfApi(token=token)  # None: huggingface_hub finds HF_TOKEN or the saved login itself
    with _hub_step(repo_id, "create the repository", token):
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if revision:
        with _hub_step(repo_id, f"create the branch {revision!r}", token):
            api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
    with _hub_step(repo_id, "list the repository's files", token):
        existing = api.list_repo_files(repo_id, repo_type="dataset", revision=revision)
    operations = plan_commit(upload, existing)
    with _hub_step(repo_id, "upload the files", token):
        commit = api.create_commit(
            repo_id=repo_id,
            repo_type="dataset",
            operations=operations,
            revision=revision,
            commit_message=commit_message or "Upload dataset built with ascl-data",
        )
    if tag:
        with _hub_step(repo_id, f"create the tag {tag!r} (the files are uploaded)", token):
            api.create_tag(repo_id, tag=tag, revision=revision, repo_type="dataset", exist_ok=True)
    deleted = tuple(op.path_in_repo for op in operations if isinstance(op, CommitOperationDelete))
    return PushResult(repo_id, getattr(commit, "commit_url", None) or str(commit), files, deleted=deleted)


_HUB_HINTS = {
    401: "the Hub does not accept the token: log in with `hf auth login` or set HF_TOKEN",
    403: "the token may not write there: it needs write access to this repository or organisation",
    404: "no such repository or organisation, or the token cannot see it",
    409: "a conflict on the Hub (the branch or tag may exist at another commit)",
    429: "the Hub is rate-limiting this account: wait a few minutes and push again",
}


def _is_timeout(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return isinstance(exc, TimeoutError) or bool(names & {"TimeoutException", "Timeout"})


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """huggingface_hub's shared HTTP client with a timeout for the length of one call (its own has none)."""
    from huggingface_hub.utils import get_session

    session = get_session()
    previous = session.timeout
    session.timeout = type(previous)(seconds)
    try:
        yield
    finally:
        session.timeout = previous


def _is_network_error(exc: BaseException) -> bool:
    """A failure to reach the Hub at all, whichever HTTP client huggingface_hub uses (requests, httpx...)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return isinstance(exc, OSError) or bool(names & {"TransportError", "RequestError", "ConnectionError", "Timeout"})


@contextmanager
def _hub_step(repo_id: str, step: str, token: str | None) -> Iterator[None]:
    """One Hub call, with a deadline: an HTTP error, an unreachable or silent Hub, or an answer that is not what
    the step expects becomes a `HubError` that says which step failed, why and what to do, with no token in it,
    instead of a traceback or a hang."""
    from huggingface_hub.errors import (
        HfHubHTTPError,
        HFValidationError,
        LocalTokenNotFoundError,
        OfflineModeIsEnabled,
    )

    secrets = [token] if token else []
    seconds = hub_timeout()
    try:
        with _deadline(seconds):
            yield
    except OfflineModeIsEnabled:
        raise HubError(f"push to {repo_id}: cannot {step}: HF_HUB_OFFLINE is set; unset it to push") from None
    except LocalTokenNotFoundError:
        raise HubError(f"push to {repo_id}: cannot {step}: no Hub token found; log in with `hf auth login` or set "
                       "HF_TOKEN") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        hint = _HUB_HINTS.get(status or 0, "the Hub failed: push again later" if (status or 0) >= 500 else "")
        detail = scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, secrets)
        message = f"push to {repo_id}: cannot {step}: HTTP {status}: {detail}" + (f". {hint}" if hint else "")
        raise HubError(message) from None
    except HFValidationError as exc:  # a name the Hub would refuse (a branch, a tag), found before any request
        raise HubError(f"push to {repo_id}: cannot {step}: {scrub(str(exc), secrets)}") from None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:  # the parse of a 200 answer of the wrong shape
        raise HubError(f"push to {repo_id}: cannot {step}: unexpected answer from the Hub ({type(exc).__name__}: "
                       f"{scrub(str(exc), secrets)}); is HF_ENDPOINT a Hugging Face Hub?") from None
    except Exception as exc:
        if _is_timeout(exc):
            raise HubError(f"push to {repo_id}: cannot {step}: the Hub did not answer within {seconds:g} s; check the "
                           f"network (or HF_ENDPOINT) and push again, or allow more time with {HUB_TIMEOUT_ENV}=SECONDS"
                           ) from None
        if not _is_network_error(exc):
            raise
        raise HubError(f"push to {repo_id}: cannot {step}: the Hub cannot be reached ({scrub(str(exc), secrets)}); "
                       "check the network (or HF_ENDPOINT) and push again") from None
