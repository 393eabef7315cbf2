"""Secret references: where a secret comes from (``{env: NAME}`` or ``{file: PATH}``), never its value."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from service.config.fields import StrictModel
from service.errors import ConfigError
from service.local_files import KIB, FileProblem, read_limited
from service.secret import Secret

# An API key or client secret is at most a few hundred bytes.
MAX_SECRET_FILE_BYTES = 64 * KIB


def _no_inline_secret(value: Any) -> Any:
    if isinstance(value, str | int | float):
        # Never echo `value`: it is probably the secret itself.
        raise ValueError("an inline secret is refused: write {env: NAME} or {file: PATH} instead")
    return value


class SecretRef(StrictModel):
    """Where a secret comes from: an environment variable or a file (a mounted Kubernetes Secret)."""

    env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="The name of the environment variable that holds the secret. Give env or file, not both.",
        examples=["DIMESCHEDULER_API_KEY"],
    )
    file: Path | None = Field(
        default=None,
        description="A file that holds the secret (a mounted Kubernetes Secret), read at every pass: a new "
        "value needs no restart. Give env or file, not both.",
        examples=["/var/run/secrets/dimescheduler/api-key"],
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of {env: NAME} or {file: PATH}")
        return self

    def describe(self) -> str:
        """Where the secret comes from, in words (``environment variable X``, ``file /path``); never its value."""
        return f"environment variable {self.env}" if self.env else f"file {self.file}"

    def problem(self, environ: Mapping[str, str]) -> str | None:
        """Why this reference cannot be resolved now, or None."""
        if self.env is not None:
            if self.env not in environ:
                return f"environment variable {self.env} is not set: set it, or use {{file: PATH}}"
            if not environ[self.env].strip():
                return f"environment variable {self.env} is set but empty: put the secret in it, or use {{file: PATH}}"
            return None
        try:
            self._file_text()
        except ValueError as exc:
            return str(exc)
        return None

    def _file_text(self) -> str:
        """The secret file's text, stripped; ValueError saying what is wrong (never quoting the file)."""
        assert self.file is not None
        try:
            # Only a regular file: a secret is read at every check and pass, which a pipe would give once,
            # and a device (/dev/zero, /dev/urandom) is never a secret.
            raw = read_limited(self.file, MAX_SECRET_FILE_BYTES)
        except FileProblem as exc:
            raise ValueError(
                f"file {self.file} cannot be used: {exc}: point it at the secret's file "
                "(e.g. a mounted Kubernetes Secret)"
            ) from None
        except OSError as exc:
            raise ValueError(f"file {self.file} cannot be read ({exc.strerror or exc}): mount or create it") from None
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ValueError(f"file {self.file} is not UTF-8 text: write the secret into it as text") from None
        if not text:
            raise ValueError(f"file {self.file} is empty: write the secret into it")
        return text

    def resolve(self, environ: Mapping[str, str] | None = None) -> Secret:
        """The secret; ConfigError saying why not."""
        environ = os.environ if environ is None else environ
        if self.env is not None:
            problem = self.problem(environ)
            if problem:
                raise ConfigError(problem)
            return Secret(environ[self.env])
        try:
            return Secret(self._file_text())
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


SecretReference = Annotated[SecretRef, BeforeValidator(_no_inline_secret)]


def _is_reference(annotation: Any) -> bool:
    if get_origin(annotation) is Annotated:
        return _is_reference(get_args(annotation)[0])
    if annotation is SecretRef:
        return True
    return get_origin(annotation) in (Union, UnionType) and any(_is_reference(a) for a in get_args(annotation))


def reference_keys(model: type[BaseModel]) -> tuple[frozenset[str], frozenset[str]]:
    """A model's keys that hold one secret reference, and those that map names to references.

    Read from the fields' types, so that no reference escapes the care problems take not to name what
    is under one.
    """
    one, named = set(), set()
    for name, field in model.model_fields.items():
        if _is_reference(field.annotation):
            one.add(name)
        elif get_origin(field.annotation) is dict and _is_reference(get_args(field.annotation)[1]):
            named.add(name)
    return frozenset(one), frozenset(named)
