"""`secret-rotator config schema|check`, and how every command finds its config file.

Loads the config's models, pydantic and YAML, and nothing that talks to the network.
"""

from __future__ import annotations

import argparse
import json

from service.config.document import Config, json_schema

EXIT_OK = 0


def load(args: argparse.Namespace) -> Config:
    """The config file of ``config check FILE``, ``--config FILE`` or ``$SECRET_ROTATOR_CONFIG``, validated;
    with ``--target NAME``, that the target exists (a usage error before any network call)."""
    from service.config.loading import load_config  # and YAML, which `config schema` does without

    config = load_config(getattr(args, "file", None) or args.config)
    if getattr(args, "target", None):
        config.target(args.target)
    return config


def schema(args: argparse.Namespace) -> int:
    """Print the JSON schema of the config file."""
    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def check(args: argparse.Namespace) -> int:
    """Validate the config file; ConfigProblems (exit 2) says exactly what is wrong."""
    config = load(args)
    names = ", ".join(t.name for t in config.targets)
    print(f"{args.file or args.config or 'config'}: OK, {len(config.targets)} target(s): {names}")
    return EXIT_OK
