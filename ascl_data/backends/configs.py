"""A model behind a backend, as a config section: the recipe's teacher, the judge's model judge and the quality
rater. Each section is a discriminated union on `backend` (one class per backend, Data Designer style) whose
`settings` are that backend's typed options (`ascl_data.backends.settings`); the model and the key's environment
variable are fields of their own. A leaf (pydantic and the other leaves only), so every config can hold one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Union

from pydantic import Discriminator, Tag, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from ascl_data.backends.names import BACKENDS, known_backends
from ascl_data.backends.settings import SETTINGS, BackendOptions, EnvVarName, check_no_secrets
from ascl_data.errors import InputError, Problem
from ascl_data.schemas import StrictModel

OWN_FIELDS = ("model", "api_key_env")  # a section's own fields, not its settings


class BackendModel(StrictModel):
    """What every model behind a backend has. Secrets are never written here: name the environment variable that
    holds the key (`api_key_env`) and the backend reads it at run time."""

    role: ClassVar[str] = "teacher"  # what the model does, for messages (the teacher, the model judge, the rater)
    section: ClassVar[str] = "teacher"  # where the section is written, for messages (`judge.model_judge`, ...)

    backend: str  # the backend: each kind below names its own
    model: str | None = None  # the model: a Hub id, a local folder or the name a server serves
    settings: Any = None  # the backend's settings: each kind below has its own
    # name of the environment variable that holds the API key, never the key itself (openai; in-process engines
    # need no key and ignore it)
    api_key_env: EnvVarName | None = None

    @field_validator("settings", mode="before")
    @classmethod
    def _no_secrets(cls, v: Any) -> Any:
        check_no_secrets(v, "settings")
        if isinstance(v, dict):
            for key in OWN_FIELDS:
                if key in v:
                    raise ValueError(f"{key} is the {cls.role}'s own field: write it as {cls.section}.{key}, not in "
                                     f"{cls.section}.settings")
        return v

    def backend_settings(self) -> BackendOptions:
        """Everything the backend is built with: the settings, the model and (for a server) the key's variable,
        validated by the backend's settings model. What the settings alone cannot say (a model the backend needs and
        `model` does not name) is an InputError naming the field."""
        data = self.settings.model_dump()
        if self.model is not None:
            data["model"] = self.model
        model = SETTINGS[self.backend]
        if self.api_key_env is not None and "api_key_env" in model.model_fields:  # a server's key; engines need none
            data["api_key_env"] = self.api_key_env
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors(include_url=False):
                field = ".".join(map(str, err["loc"]))
                field = f"{self.section}.{field}" if field in OWN_FIELDS else f"{self.section}.settings.{field}"
                message = err["msg"].removeprefix("Value error, ")
                if field == f"{self.section}.model" and err["type"] == "missing":
                    message = f"the {self.backend} backend needs a model: name it in {self.section}.model"
                problems.append(Problem(self.section.partition(".")[0], field, message))
            raise InputError(f"recipe {self.section}", problems) from None

    def flat_settings(self) -> dict[str, Any]:
        """The settings as written, with the model and the key's variable beside them: the one flat dict that the
        judge's and the rater's `backend_settings` held before they had sections (their fingerprints hash it)."""
        flat = self.settings.given()
        flat.update({key: getattr(self, key) for key in OWN_FIELDS if key in self.model_fields_set})
        return flat


def sectioned(flat: dict[str, Any]) -> dict[str, Any]:
    """A flat `backend_settings` dict (`--judge-setting model=M`, an old recipe's judge) as a section's fields: the
    model and the key's variable as fields of their own, the rest as `settings`."""
    out: dict[str, Any] = {key: flat[key] for key in OWN_FIELDS if key in flat}
    out["settings"] = {key: value for key, value in flat.items() if key not in OWN_FIELDS}
    return out


def backend_union(kinds: dict[str, type[BackendModel]], what: str, default: str | None = None) -> Any:
    """The section `kinds` make (one class per backend, each with its own `settings`), told apart by `backend`;
    `default` is the backend of a section that names none. An unknown backend is an error naming `backend` and the
    known ones (BACKENDS: the one list of backend names)."""
    if set(kinds) != set(BACKENDS):
        raise TypeError(f"{what}: one kind per backend is needed, {sorted(BACKENDS)}; got {sorted(kinds)}")

    def tag(value: Any) -> str | None:
        backend = value.get("backend", default) if isinstance(value, dict) else getattr(value, "backend", None)
        return backend if backend in kinds else None

    said = f"unknown {what} backend" if default else f"a missing or unknown {what} backend"
    message = f"backend: {said}; it is one of {known_backends()}"
    members = tuple(Annotated[cls, Tag(name)] for name, cls in kinds.items())
    return Annotated[Union[members],  # noqa: UP007 (a union built from a tuple)
                     Discriminator(tag, custom_error_type="unknown_backend", custom_error_message=message)]


def as_written(exc: ValidationError, renames: dict[str, str], tags: Iterable[str], *, inside: str | None = None,
               at: tuple[str, ...] = ()) -> ValidationError:
    """`exc`, raised for a section made from the flat shape of before (the judge's, the rater's), with each of the
    section's errors named by the key that shape wrote, so that a user reads the keys of the file: its location loses
    the union's tag (one of `tags`), a section field is renamed by `renames` (`settings` -> `backend_settings`), as is
    the field a message starts with. `inside` is the field the section went into (None: `exc` is the section's own),
    replaced by `at`; an error elsewhere keeps its location."""
    tags = set(tags)
    errors: list[Any] = []
    for err in exc.errors(include_url=False):
        loc, message = tuple(err["loc"]), err["msg"].removeprefix("Value error, ")
        if inside is None or loc[:1] == (inside,):
            rest = [str(part) for part in loc[0 if inside is None else 1:]]
            if rest and rest[0] in tags:
                rest = rest[1:]
            if rest and rest[0] in renames:
                rest = [*renames[rest[0]].split("."), *rest[1:]]
            loc = (*at, *rest)
            for new in sorted(renames, key=len, reverse=True):
                if message.startswith((f"{new}: ", f"{new}.")):
                    message = renames[new] + message[len(new):]
                    break
        errors.append(InitErrorDetails(type=PydanticCustomError(err["type"], message), loc=loc, input=err["input"]))
    return ValidationError.from_exception_data(exc.title, errors)


__all__ = ["OWN_FIELDS", "BackendModel", "as_written", "backend_union", "sectioned"]
