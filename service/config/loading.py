"""Reading the config file: size and encoding limits, YAML, validation, and the checks pydantic cannot
make (service.config.checks), all reported in one round in the order of the file."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError

from service.config import CONFIG_ENV
from service.config.checks import cross_checks
from service.config.document import Config
from service.config.problems import ConfigProblems, in_document_order, located_problems
from service.config.yaml_reader import safe_load
from service.errors import ConfigError
from service.local_files import MIB, FileProblem, read_limited, size_text

# A 10,000-target config is about 4 MB; anything far beyond is not a config someone wrote.
MAX_CONFIG_BYTES = 16 * MIB


@contextlib.contextmanager
def _no_garbage_collection() -> Iterator[None]:
    """Building a large config makes a few hundred thousand objects and no reference cycles: the collector,
    running every few hundred allocations, would spend a fifth of the load time finding nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_config(text: str, source: str = "config", environ: Mapping[str, str] | None = None) -> Config:
    """Validate a YAML document; raises ConfigProblems naming every problem."""
    with _no_garbage_collection():
        return _parse_config(text, source, environ)


def _parse_config(text: str, source: str, environ: Mapping[str, str] | None) -> Config:
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        # The YAML error's own text quotes the offending line, which may hold a pasted secret.
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigProblems(source, [f"{where}not valid YAML ({problem})"]) from None
    if not isinstance(data, dict):
        raise ConfigProblems(source, ["(top level): expected a mapping with at least `targets:`"])
    config: Config | None = None
    try:
        config = Config.model_validate(data)
        problems = []
    except ValidationError as exc:
        problems = located_problems(exc, root=Config)
    # Also when a key is wrong: every problem of the file in one round, in the file's order.
    problems += cross_checks(data, config, os.environ if environ is None else environ)
    if problems or config is None:
        raise ConfigProblems(source, in_document_order(data, problems)) from None
    return config


def load_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file named by ``path`` or ``$SECRET_ROTATOR_CONFIG``."""
    environ = os.environ if environ is None else environ
    name = path or environ.get(CONFIG_ENV)
    if not name:
        raise ConfigError(f"no config file: pass --config FILE or set {CONFIG_ENV}")
    return parse_config(read_config_text(name), source=str(name), environ=environ)


def read_config_text(name: str | Path) -> str:
    """The text of a config file; ConfigError saying why not (too large, not a file, not UTF-8)."""
    try:
        # A pipe is fine (`--config <(envsubst < config.yaml)`); devices, directories and sockets are not.
        raw = read_limited(name, MAX_CONFIG_BYTES, pipes=True)
    except FileProblem as exc:
        raise ConfigError(
            f"{name}: cannot use it as the config file: {exc} (a 10,000-target config is about {size_text(4 * MIB)})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read the config file ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{name}: the config file is not UTF-8 text (a byte that is not UTF-8 at offset "
            f"{exc.start}); save it as UTF-8"
        ) from None
