"""The settings each backend takes, as Pydantic models: a leaf (pydantic only), so that configs (the recipe's
`teacher:`, the judge's and the rater's `backend_settings`) validate them when they are read, without importing any
backend, and the backends are built from them.

Two shapes per backend. `*Options` is what a recipe's `teacher.settings` holds: everything but the model and the
key, which are the teacher's own fields (`teacher.model`, `teacher.api_key_env`). `*Settings` adds the model (and,
for `openai`, `api_key_env`): everything the backend's constructor takes, what a judge's `backend_settings` holds
and what `make_backend` gets. Unknown and bad settings are errors that name the setting.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, ClassVar
from urllib.parse import urlparse

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator,
                      model_validator)
from pydantic_core import InitErrorDetails, PydanticCustomError

# a setting *named* like a secret (`api_key`, `hf_token`, ...); `tokenizer`, `max_tokens` or `chars_per_token` are not
SECRET_KEYS = re.compile(r"(^|_|-)(api[_-]?key|(?<!per_)token|secret|password|authorization)$", re.I)


def check_no_secrets(settings: Any, field: str) -> None:
    """Recipes are hashed into cards and kept with datasets: a key that looks like a secret is an error."""
    for key in settings if isinstance(settings, dict) else ():
        if SECRET_KEYS.search(str(key)) and key != "api_key_env":
            raise ValueError(
                f"{field}.{key} looks like a secret; recipes are hashed into cards and kept with datasets, so put it "
                "in an environment variable and name that with `api_key_env`"
            )


def env_var_name(value: str) -> str:
    """The one check of an `api_key_env`: it names an environment variable; the key itself is refused (and never
    echoed: the message does not repeat the value)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value) or value.lower().startswith("sk-"):
        raise ValueError("is not an environment variable name (such as OPENAI_API_KEY): name the variable that "
                         "holds the key, never put the key itself here")
    return value


EnvVarName = Annotated[str, AfterValidator(env_var_name)]  # the name of an environment variable (never a secret)


class BackendOptions(BaseModel):
    """Base of the settings models: unknown settings are errors naming the setting and listing the known ones; the
    settings as given are kept (`given()`) so that a recipe's fingerprint hashes what the user wrote."""

    model_config = ConfigDict(extra="forbid")
    backend: ClassVar[str]
    _given: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _named_errors(cls, data: Any, handler: Any) -> Any:
        try:
            out = handler(data)
        except ValidationError as exc:
            known = sorted(cls.model_fields)
            errors: list[Any] = []
            for err in exc.errors(include_url=False):
                if err["type"] == "extra_forbidden":
                    key = err["loc"][-1]
                    close = difflib.get_close_matches(str(key), known, n=1)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                    message = f"the {cls.backend} backend has no setting {key!r}; {hint}it has {known}"
                    errors.append(InitErrorDetails(type=PydanticCustomError("extra_forbidden", message),
                                                   loc=err["loc"], input=err["input"]))
                else:
                    errors.append(err)
            raise ValidationError.from_exception_data(exc.title, errors) from None
        if isinstance(data, dict):
            out._given = dict(data)
        return out

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in type(self).model_fields:
            self._given[name] = value

    def given(self) -> dict[str, Any]:
        """The settings as the user gave them (keys and values as written, later assignments included)."""
        return dict(self._given)


# --------------------------------------------------------------------------- transformers


class TransformersOptions(BackendOptions):
    """Settings of the `transformers` backend (in process; the embedded teacher)."""

    backend: ClassVar[str] = "transformers"

    device: str = "auto"  # cpu, cuda, cuda:1, ...; auto: cuda when there is one
    # a torch dtype name (float32, bfloat16, ...); auto: bfloat16 on a GPU that computes it, else float32
    dtype: str = "auto"
    batch_size: int = Field(8, ge=1)  # conversations per `generate` call
    chat_template: str | None = None  # a Jinja chat template replacing the tokenizer's
    trust_remote_code: bool = False  # run the model repository's own code (only for a repository you trust)
    num_threads: int | None = Field(None, ge=1)  # torch CPU threads (process-wide); None: torch's default
    # the embedded model with its seed adapter merged in; false: the bare SmolLM2 (other models: no effect)
    seed_adapter: bool = True


class TransformersSettings(TransformersOptions):
    """Everything `TransformersBackend` takes: the options and the model."""

    model: str | None = None  # a Hub id or a local folder; None or "embedded": the embedded SmolLM2


# --------------------------------------------------------------------------- vllm


class VLLMOptions(BackendOptions):
    """Settings of the `vllm` backend (the in-process `vllm.LLM` engine). vLLM's own engine arguments are many and
    change between its releases, so the ones not named here go, unchecked, in `engine_kwargs`."""

    backend: ClassVar[str] = "vllm"

    dtype: str = "auto"  # the engine's dtype; auto: the model's (float32 or bfloat16 on a CPU, by what it computes)
    max_model_len: int | None = Field(None, ge=1)  # context length; None: the model's
    tensor_parallel_size: int = Field(1, ge=1)  # GPUs the model is split over
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)  # share of GPU memory the engine may take
    seed: int = 0  # the engine's seed (each request has its own as well)
    chat_template: str | None = None  # a Jinja chat template (or a file holding one) replacing the tokenizer's
    # keyword arguments for the chat template on every turn (e.g. {enable_thinking: true})
    chat_template_kwargs: dict[str, Any] | None = None
    # further `vllm.LLM` engine arguments (enforce_eager, quantization, ...): passed as they are
    engine_kwargs: dict[str, Any] | None = None
    batch_size: int = Field(256, ge=1)  # conversations per `llm.chat` call at most


class VLLMSettings(VLLMOptions):
    """Everything `VLLMBackend` takes: the options and the model."""

    model: str = Field(min_length=1)  # a Hub id or a local folder


# --------------------------------------------------------------------------- openai


class OpenAIOptions(BackendOptions):
    """Settings of the `openai` backend (any OpenAI-compatible server)."""

    backend: ClassVar[str] = "openai"

    # the server's OpenAI-compatible URL(s), ending in /v1 (`base_url: URL` for one); each request goes to the
    # least busy one
    base_urls: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8000/v1"], min_length=1)
    max_concurrency: int = Field(32, ge=1)  # requests in flight at once, over all replicas
    max_retries: int = Field(6, ge=0)  # further tries of a failed request (429, 5xx, timeouts, connection errors)
    timeout_s: float = Field(120.0, gt=0)  # deadline of one request: connect, wait and read the whole answer
    backoff_initial_s: float = Field(0.5, gt=0)  # first backoff step; it doubles each retry (jittered)
    backoff_max_s: float = Field(20.0, gt=0)  # the largest backoff step
    max_retry_after_s: float = Field(120.0, gt=0)  # cap on a server's Retry-After
    # requests sent per minute at most, evenly spaced (a hosted API's RPM limit); None: no limit
    max_requests_per_minute: float | None = Field(None, gt=0)
    # prompt + max_tokens tokens sent per minute at most (a hosted API's TPM limit); None: no limit
    max_tokens_per_minute: int | None = Field(None, gt=0)
    replica_cooldown_s: float = Field(5.0, ge=0)  # how long a failing replica is skipped
    tool_choice: str | dict[str, Any] | None = None  # sent whenever tools are offered
    force_first_tool_call: bool = False  # force the tool on turns before any tool result (small models)
    send_reasoning: bool = False  # send earlier turns' reasoning_content back (most servers reject it)
    extra_body: dict[str, Any] = Field(default_factory=dict)  # extra top-level keys of every request body
    # the prompt-length guard's context length; None: ask the server's /v1/models for `max_model_len`
    max_model_len: int | None = Field(None, ge=1)
    # counts prompt tokens for the guard (a tokenizer name or path); None: characters / chars_per_token
    tokenizer: str | None = None
    # characters per token of the estimate, set low so that a prompt the guard lets through fits
    chars_per_token: float = Field(3.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _base_url_alias(cls, data: Any) -> Any:
        """`base_url: URL` (one replica) is accepted as well as `base_urls: [URL, ...]`."""
        if isinstance(data, dict) and "base_url" in data:
            data = dict(data)
            if "base_urls" in data:
                raise ValueError("give base_url or base_urls, not both")
            data["base_urls"] = data.pop("base_url")
        return data

    @field_validator("base_urls", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("base_urls")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        for url in v:
            parsed = urlparse(url)
            if parsed.username is not None or parsed.password is not None:
                # the URL is echoed in messages and a server may echo the Basic credential made from it; and the
                # client would send that instead of the key: a credential has one place, `api_key_env`
                shown = f"{parsed.scheme}://***@{parsed.hostname or ''}{f':{parsed.port}' if parsed.port else ''}"
                raise ValueError(
                    f"{shown}{parsed.path} holds a user name or password (`user:pass@`); a URL is shown in messages "
                    "and logs, so credentials never go in it. Put the key in an environment variable and name "
                    "that variable in teacher.api_key_env")
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ValueError(f"{url!r} is not an http(s) URL such as http://127.0.0.1:8000/v1")
        return [u.rstrip("/") for u in v]


class OpenAISettings(OpenAIOptions):
    """Everything `OpenAIBackend` takes: the options, the model and the key's environment variable."""

    # the model name the server serves (its /v1/models lists the names)
    model: str = Field(min_length=1)
    api_key_env: EnvVarName | None = None  # name of the env var holding the key; None -> "EMPTY" (local servers)


#: Each backend's options (a teacher's `settings`) and its full settings (a judge's `backend_settings`), by name
OPTIONS: dict[str, type[BackendOptions]] = {"transformers": TransformersOptions, "openai": OpenAIOptions,
                                            "vllm": VLLMOptions}
SETTINGS: dict[str, type[BackendOptions]] = {"transformers": TransformersSettings, "openai": OpenAISettings,
                                             "vllm": VLLMSettings}


def check_settings(backend: str, settings: dict[str, Any]) -> None:
    """`settings` (a judge's or rater's `backend_settings`) checked by `backend`'s settings model: an unknown, secret
    or bad setting is a ValidationError naming it. A setting left out that the backend needs (its model) is not: a
    judge given from Python has none, and the backend says so when it is made."""
    check_no_secrets(settings, "backend_settings")
    try:
        SETTINGS[backend].model_validate(settings)
    except ValidationError as exc:
        errors: list[Any] = [
            InitErrorDetails(type=PydanticCustomError(e["type"], e["msg"].removeprefix("Value error, ")), loc=e["loc"],
                             input=e["input"])
            for e in exc.errors(include_url=False) if e["type"] != "missing"]
        if errors:
            raise ValidationError.from_exception_data(exc.title, errors) from None


__all__ = ["OPTIONS", "SETTINGS", "EnvVarName", "OpenAIOptions", "OpenAISettings", "TransformersOptions",
           "TransformersSettings", "VLLMOptions", "VLLMSettings", "check_no_secrets", "check_settings",
           "env_var_name"]
