"""`secret-rotator bootstrap`: its arguments, the admin's sign-in and clients, and what it prints.

Exit codes: 0 done (or, with --dry-run, planned); 1 a step failed (the message names the privilege it
needs and what was already created); 2 bad arguments or config, an ambiguous app, or a --store secret
that belongs to something else. The one secret ever printed is the new one when it is not stored, once,
marked as such; everything else passes the redactor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service import logs, redact
from service.bootstrap import (
    DEFAULT_LIFETIME,
    Outcome,
    Request,
    StepFailed,
    Store,
    apply,
    config_snippet,
    gather,
    plan,
    preview,
)
from service.catalogue import Event
from service.clock import SystemClock, iso
from service.config.clouds import Cloud, Endpoints, IdentityConfig, ca_bundle_problem
from service.config.fields import GUID, is_loopback
from service.config.loading import read_config_text
from service.config.policy import PolicyOverrides

# The config file's own wording of validation errors (key path and fix, never the value).
from service.config.problems import ConfigProblems, problems_of
from service.durations import format_duration, parse_duration
from service.errors import ConfigError, RemoteError
from service.model import DEFAULT_MARKER
from service.ports import Clock
from service.retry import RetryPolicy
from service.tables import table

EXIT_OK, EXIT_FAILED = 0, 1
VAULT_SUFFIX = {"public": "vault.azure.net", "usgov": "vault.usgovcloudapi.net", "china": "vault.azure.cn"}
_VALUE_PLACEHOLDER = "@@secret-rotator-bootstrap-secret@@"

# -- arguments and config --------------------------------------------------------------------------


class _ConfigView(BaseModel):
    """The parts of a config file bootstrap uses; the rest (targets, ...) may not exist yet."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    cloud: Cloud = Field(default_factory=Cloud)
    credential: IdentityConfig | None = None
    defaults: PolicyOverrides = Field(default_factory=PolicyOverrides)


@dataclass(frozen=True)
class Settings:
    """Everything bootstrap needs from its command line and config: the request, the cloud, who signs in."""

    request: Request
    cloud: Endpoints
    identity: IdentityConfig  # unused with --device-code
    device_code: bool = False
    dry_run: bool = False
    output: str = "table"


def _guid(flag: str, value: str | None) -> str | None:
    if value is not None and not re.match(GUID, value):
        raise ConfigError(f"{flag} {value}: must be a GUID like 00000000-0000-0000-0000-000000000000")
    return value.lower() if value else None


def _read_config(name: str) -> tuple[_ConfigView, dict[str, Any]]:
    text = read_config_text(name)  # size-limited, UTF-8, a regular file or a pipe; ConfigError if not
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        # The YAML error's own text quotes the offending line, which may hold a pasted secret.
        raise ConfigProblems(name, ["(top level): not valid YAML"]) from None
    if not isinstance(data, dict):
        raise ConfigProblems(name, ["(top level): expected a mapping"])
    try:
        return _ConfigView.model_validate(data), data
    except ValidationError as exc:
        raise ConfigProblems(name, problems_of(exc)) from None


def _cloud(view: _ConfigView, raw: dict[str, Any], args: argparse.Namespace) -> Cloud:
    raw_cloud = raw.get("cloud")
    given: dict[str, Any] = dict(raw_cloud) if isinstance(raw_cloud, dict) else {}
    for key in ("authority_host", "graph_url", "ca_bundle"):
        if getattr(args, key):
            given[key] = getattr(args, key)
    try:
        cloud = Cloud.model_validate(given) if given else view.cloud
    except ValidationError as exc:
        raise ConfigProblems("--authority-host/--graph-url/--ca-bundle", problems_of(exc)) from None
    problem = ca_bundle_problem(Path(cloud.ca_bundle)) if cloud.ca_bundle is not None else None
    if problem:
        raise ConfigError(f"ca bundle {problem}")
    return cloud


def parse_store(text: str, cloud_name: str) -> Store:
    """``keyvault://VAULT/NAME``: VAULT is a vault name (in the cloud's vault domain) or a host[:port]."""
    match = re.fullmatch(r"keyvault://([^/\s]+)/([0-9a-zA-Z-]{1,127})/?", text)
    if match is None:
        raise ConfigError(
            f"--store {text}: write it as keyvault://VAULT/SECRET-NAME (a secret name has 1-127 letters, digits "
            "and '-'), e.g. keyvault://my-vault/dime-exchange-client-secret"
        )
    vault, name = match.groups()
    if "." not in vault and ":" not in vault:
        if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]", vault):
            raise ConfigError(f"--store: {vault!r} is not a vault name (3-24 letters, digits and '-')")
        vault = f"{vault}.{VAULT_SUFFIX[cloud_name]}"
    host = urlsplit(f"https://{vault}").hostname
    # An emulator on loopback answers the challenge for vault.azure.net, which a loopback host cannot match.
    return Store(f"https://{vault}", name, verify_challenge_resource=not is_loopback(host))


def _redirect_uri(value: str) -> str:
    parts = urlsplit(value)
    if (
        not parts.netloc
        or parts.scheme not in ("https", "http")
        or (parts.scheme == "http" and not is_loopback(parts.hostname))
    ):
        raise ConfigError(f"--redirect-uri {value}: a web redirect URI must be https (http only for localhost)")
    return value


def settings(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Settings:
    """Everything checked before any network call; raises ConfigError (exit 2)."""
    environ = dict(os.environ) if environ is None else environ
    # Only an explicit --config: $SECRET_ROTATOR_CONFIG names the rotator's own config, whose credential
    # must never become the admin's sign-in by accident.
    view, raw = _read_config(args.config) if args.config else (_ConfigView(), {})
    cloud = _cloud(view, raw, args)
    tenant = _guid("--tenant-id", args.tenant_id)
    assert tenant is not None  # argparse requires it
    if not args.name.strip():
        raise ConfigError("--name: give the app's display name")
    lifetime = view.defaults.lifetime or DEFAULT_LIFETIME
    if args.secret_lifetime:
        try:
            lifetime = parse_duration(args.secret_lifetime)
        except ValueError as exc:
            raise ConfigError(f"--secret-lifetime: {exc}") from None
    if lifetime < timedelta(days=1):
        raise ConfigError(f"--secret-lifetime {format_duration(lifetime)}: give at least 1d (90d is usual)")
    request = Request(
        tenant_id=tenant,
        name=args.name.strip(),
        redirect_uri=_redirect_uri(args.redirect_uri),
        client_id=_guid("--client-id", args.client_id),
        owner=_guid("--owner", args.owner),
        lifetime=lifetime,
        marker=view.defaults.marker or DEFAULT_MARKER,
        new_secret=args.new_secret,
        store=parse_store(args.store, cloud.name) if args.store else None,
    )
    identity = view.credential or IdentityConfig()
    if identity.client_secret is not None and not args.device_code:
        problem = identity.client_secret.problem(environ)
        if problem:
            raise ConfigError(f"credential.client_secret: {problem}")
    return Settings(request, cloud.endpoints(), identity, args.device_code, args.dry_run, args.output)


# -- running ---------------------------------------------------------------------------------------


async def bootstrap(config: Settings, clock: Clock, retry: RetryPolicy | None = None) -> Outcome:
    """Sign in, gather, plan, and (unless dry-run) apply. Raises ConfigError; remote failures are in the Outcome."""
    from service.wiring import bootstrap_clients  # the SDKs: only when bootstrap runs

    request, cloud = config.request, config.cloud
    retry = retry or RetryPolicy()
    async with bootstrap_clients(
        cloud,
        request.tenant_id,
        identity=config.identity,
        device_code=config.device_code,
        store=request.store,
        retry=retry,
    ) as (admin, directory, vault):
        try:
            facts = await gather(request, admin, vault)
        except RemoteError as error:
            return Outcome(request, [], None, error=StepFailed(None, error))
        steps = plan(request, facts)
        if config.dry_run:
            return preview(request, facts, steps)
        return await apply(request, facts, steps, admin=admin, directory=directory, vault=vault, now=clock.now())
    raise AssertionError("unreachable")  # pragma: no cover - mypy cannot see that the block always returns


def handle(args: argparse.Namespace) -> int:
    """`secret-rotator bootstrap` (its arguments are registered in service/cli.py)."""
    logs.configure_as_asked(sys.stderr, getattr(args, "log_format", "auto"), getattr(args, "log_level", "info"))
    config = settings(args)
    outcome = asyncio.run(bootstrap(config, SystemClock()))
    log = logs.get_logger(tenant_id=config.request.tenant_id)
    for result in outcome.results:
        log.debug(Event.BOOTSTRAP_STEP, step=result.step.title, status=result.status.value, detail=result.detail)
    log.info(
        Event.BOOTSTRAP_FINISHED,
        client_id=outcome.app.app_id if outcome.app else None,
        dry_run=outcome.dry_run,
        changed=sum(r.status.value in ("created", "updated") for r in outcome.results),
        failed=outcome.error.step.title if isinstance(outcome.error, StepFailed) and outcome.error.step else None,
        reason=outcome.error.reason.value if outcome.error else None,
    )
    if config.output == "json":
        sys.stdout.write(render_json(outcome) + "\n")
    else:
        sys.stdout.write(render_table(outcome) + "\n")
        if outcome.error is not None:
            sys.stderr.write(render_error(outcome) + "\n")
    return EXIT_OK if outcome.error is None else EXIT_FAILED


# -- output ----------------------------------------------------------------------------------------


def _secret_document(outcome: Outcome) -> dict[str, Any] | None:
    issued, existing = outcome.issued, outcome.existing_secret
    credential = issued.credential if issued else existing
    if credential is None:
        return None
    stored = outcome.stored_in
    document: dict[str, Any] = {
        "key_id": credential.key_id,
        "display_name": credential.display_name,
        "expires_on": iso(credential.end),
        "created": issued is not None,
        "stored_in": str(stored) if stored else None,
    }
    if issued is not None and issued.value is not None:
        document["value"] = _VALUE_PLACEHOLDER
    return document


def document(outcome: Outcome) -> dict[str, Any]:
    """The JSON result; the secret's value is a placeholder that only render_json fills in."""
    app = outcome.app
    error = outcome.error
    return {
        "tenant_id": outcome.request.tenant_id,
        "name": app.display_name if app else outcome.request.name,
        "client_id": app.app_id if app else None,
        "object_id": app.object_id if app else None,
        "dry_run": outcome.dry_run,
        "steps": [{"step": r.step.title, "status": r.status.value, "detail": r.detail} for r in outcome.results],
        "secret": _secret_document(outcome),
        "config": config_snippet(outcome) if error is None else None,
        "error": None
        if error is None
        else {
            "reason": error.reason.value,
            "message": str(error),
            "needs": getattr(error, "needs", None),
            "already_created": getattr(error, "made", []),
            "hint": error.hint,
        },
    }


def _reveal(text: str, outcome: Outcome, quote: bool) -> str:
    """Scrub every registered secret from ``text``, then put the one to show in its place."""
    text = redact.scrub(text)
    if outcome.issued is None or outcome.issued.value is None:
        return text
    value = outcome.issued.value.reveal()
    return text.replace(_VALUE_PLACEHOLDER, json.dumps(value)[1:-1] if quote else value)


def render_json(outcome: Outcome) -> str:
    """The outcome as JSON; the secret value, when it is to be shown once, in place of its placeholder."""
    return _reveal(json.dumps(document(outcome), indent=2), outcome, quote=True)


def _snippet_text(outcome: Outcome) -> str:
    snippet = config_snippet(outcome)
    if snippet is None:
        return ""
    text = yaml.safe_dump(snippet, sort_keys=False, default_flow_style=False)
    if not outcome.request.store:
        text = text.replace(
            "  sinks: []\n",
            "  sinks:                       # where the rotator puts each new secret, e.g.:\n"
            "  - type: keyvault\n"
            "    vault_url: https://MY-VAULT.vault.azure.net\n"
            "    secret_name: dime-exchange-client-secret\n",
        )
    return text


def render_table(outcome: Outcome) -> str:
    """The outcome for a person: each step, the ids, the secret once (or where it is stored), the config snippet."""
    request, app = outcome.request, outcome.app
    title = "would be done" if outcome.dry_run else "failed" if outcome.error else "done"
    lines = [f"bootstrap of {request.name!r} in tenant {request.tenant_id} ({title}):", ""]
    if outcome.results:
        lines += table(
            [["STEP", "RESULT", "DETAIL"]] + [[r.step.title, r.status.value, r.detail] for r in outcome.results],
            indent="  ",
        )
        lines.append("")
    lines.append(f"tenant id:  {request.tenant_id}")
    lines.append(f"client id:  {app.app_id if app else '(not created yet)'}")
    secret = _secret_document(outcome)
    show = False
    if secret is None:
        lines.append("secret:     (none yet)")
    elif secret["stored_in"]:
        verb = "stored in" if secret["created"] else "already held by"
        lines.append(f"secret:     {secret['key_id']} {verb} {secret['stored_in']} (not shown)")
    elif "value" in secret:
        show = True
        lines.append(f"secret:     {secret['key_id']}, expires {secret['expires_on']}: SHOWN ONCE below")
    else:
        lines.append(
            f"secret:     {secret['key_id']} already on the app, expires {secret['expires_on']} (never shown again)"
        )
    if show:
        lines += [
            "",
            "----- client secret: shown once, it cannot be read again; store it now -----",
            _VALUE_PLACEHOLDER,
            "----- end of client secret -----",
        ]
    snippet = _snippet_text(outcome) if outcome.error is None else ""
    if snippet:
        lines += ["", "to rotate it, add this target to the rotator's config:", "", snippet.rstrip()]
    return _reveal("\n".join(lines), outcome, quote=False)


def render_error(outcome: Outcome) -> str:
    """What stopped bootstrap, what it needs, what was already made, and the hint (scrubbed)."""
    error = outcome.error
    assert error is not None
    lines = [f"secret-rotator: bootstrap failed: {error}"]
    needs = getattr(error, "needs", None)
    if needs:
        lines.append(f"needs: {needs}")
    if isinstance(error, StepFailed):
        lines.append("already created by this run: " + ("; ".join(error.made) if error.made else "nothing"))
    lines.append(f"hint: {error.hint}")
    return redact.scrub("\n".join(lines))
