"""`secret-rotator bootstrap` against the emulator: the real msgraph-sdk, azure-identity and Key Vault SDKs.

The command runs as an operator runs it (`cli.main` in a worker thread, with its own event loop) while
the emulator answers on the test's loop. Every output is searched for issued secrets; the one secret a
bootstrap without --store shows is cut out first and proven to authenticate.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from service import cli, redact
from service.bootstrap import DEFAULT_NAME, DEFAULT_REDIRECT_URI, GRAPH_APP_ID, GRAPH_ROLES
from service.config.loading import parse_config
from service.emulator import AppRecord, Emulator, Identity
from service.emulator.directory import SecretCheck
from service.metrics import Metrics
from service.model import Flags
from service.reconcile import Outcome
from service.runner import PassOptions, run_pass
from tests.conftest import assert_no_secrets
from tests.integration.conftest import FAST_BACKOFF, FAST_RETRY, LogCapture
from tests.world import cloud

ADMIN_ROLES = ("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All")
SHOWN_ONCE = "----- client secret: shown once"
SECRET_NAME = "dime-exchange-client-secret"
MARKER = "secret-rotator "
STEPS = [
    "application",
    "service principal",
    "admin consent: Calendars.ReadWrite",
    "admin consent: MailboxSettings.ReadWrite",
    "admin consent: User.Read.All",
    "owner",
    "client secret",
]


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def statuses(self) -> dict[str, str]:
        """Step -> result, from the table's rows."""
        found = {}
        for line in self.out.splitlines():
            for step in (*STEPS, "app settings"):
                if line.strip().startswith(step + "  "):
                    found[step] = line.strip()[len(step) :].strip().split("  ")[0]
        return found

    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.out)
        return document

    def check_no_secrets(self) -> None:
        """No issued secret anywhere but in the one-time display, and that one exactly once."""
        shown = None
        if SHOWN_ONCE in self.out:
            shown = shown_secret(self.out)
        elif self.out.startswith("{") and "value" in (self.json().get("secret") or {}):
            shown = json.dumps(self.json()["secret"]["value"])[1:-1]
        rest = self.out
        if shown is not None:
            assert self.out.count(shown) == 1
            rest = self.out.replace(shown, "<shown once>")
        assert_no_secrets(rest + self.err, "bootstrap's output besides the one-time display")


@dataclass
class Site:
    """A tenant with a rotator identity (Application.ReadWrite.OwnedBy only) to make an owner."""

    emu: Emulator
    tmp: Path
    tenant: str
    rotator: Identity
    capsys: pytest.CaptureFixture[str]
    admin_object_id: str = ""

    @property
    def vault(self) -> str:
        return f"keyvault://{self.emu.vault_url.removeprefix('https://')}/{SECRET_NAME}"

    def admin(self, roles: tuple[str, ...] = ADMIN_ROLES) -> Path:
        """A config whose credential: is an admin app with these Graph application permissions."""
        admin = self.emu.add_rotator(self.tenant, roles=roles, display_name="bootstrap admin")
        self.admin_object_id = admin.object_id
        secret = self.tmp / f"admin-{admin.client_id}"
        secret.write_text(admin.secret)
        secret.chmod(0o600)
        config = self.tmp / f"admin-{admin.client_id}.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "cloud": cloud(self.emu),
                    "credential": {
                        "type": "client_secret",
                        "tenant_id": self.tenant,
                        "client_id": admin.client_id,
                        "client_secret": {"file": str(secret)},
                    },
                }
            )
        )
        return config

    async def bootstrap(
        self, *args: str, config: Path | None = None, owner: bool = True, signed_in: bool = True
    ) -> Ran:
        """``secret-rotator bootstrap``; ``signed_in`` False: no config at all (flags and --device-code)."""
        argv = ["bootstrap", "--tenant-id", self.tenant, "--log-format", "json"]
        argv += ["--config", str(config or self.admin())] if signed_in else []
        argv += ["--owner", self.rotator.object_id] if owner else []
        code = await asyncio.to_thread(cli.main, [*argv, *args])
        captured = self.capsys.readouterr()
        ran = Ran(code, captured.out, captured.err)
        ran.check_no_secrets()
        return ran

    # what the tenant holds now
    def apps(self, name: str = DEFAULT_NAME) -> list[AppRecord]:
        tenant = self.emu.directory.require_tenant(self.tenant)
        return [a for a in tenant.apps.values() if a.display_name == name]

    def app(self, name: str = DEFAULT_NAME) -> AppRecord:
        [app] = self.apps(name)
        return app

    def consented(self, app: AppRecord) -> set[str]:
        tenant = self.emu.directory.require_tenant(self.tenant)
        sp = self.emu.directory.sp_by_app_id(tenant, app.app_id)
        if sp is None:
            return set()
        graph = self.emu.directory.graph_sp(tenant)
        return set(self.emu.directory.roles_of(tenant, sp.object_id, graph.object_id))

    def has_sp(self, app: AppRecord) -> bool:
        tenant = self.emu.directory.require_tenant(self.tenant)
        return self.emu.directory.sp_by_app_id(tenant, app.app_id) is not None

    def managed(self, app: AppRecord) -> list[Any]:
        return [p for p in app.passwords if (p.display_name or "").startswith(MARKER)]

    def assert_complete(self, app: AppRecord) -> None:
        assert app.sign_in_audience == "AzureADMyOrg"
        assert DEFAULT_REDIRECT_URI in app.redirect_uris
        requested = {
            (r["resourceAppId"], a["id"], a["type"]) for r in app.required_resource_access for a in r["resourceAccess"]
        }
        assert {(GRAPH_APP_ID, role_id, "Role") for role_id in GRAPH_ROLES.values()} <= requested
        assert self.has_sp(app)
        assert self.consented(app) >= set(GRAPH_ROLES)
        assert self.rotator.object_id in app.owners
        assert len(self.managed(app)) == 1


@pytest.fixture
def site(emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Site:
    tenant = emu.add_tenant()
    rotator = emu.add_rotator(tenant, roles=("Application.ReadWrite.OwnedBy",))
    return Site(emu, tmp_path, tenant, rotator, capsys)


def shown_secret(out: str) -> str:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(SHOWN_ONCE))
    return lines[start + 1]


def authenticates(site: Site, app: AppRecord, secret: str) -> bool:
    return site.emu.directory.check_secret(app, secret) is SecretCheck.OK


# -- a fresh tenant --------------------------------------------------------------------------------


async def test_a_fresh_tenant_gets_the_whole_setup_and_the_secret_is_shown_once(site: Site) -> None:
    ran = await site.bootstrap()

    assert ran.code == 0
    app = site.app()
    site.assert_complete(app)
    assert ran.statuses() == dict.fromkeys(STEPS, "created")
    secret = shown_secret(ran.out)
    assert authenticates(site, app, secret)
    assert ran.out.count(secret) == 1
    assert "shown once" in ran.out
    rest = ran.out.replace(secret, "<shown>")
    assert_no_secrets(rest + ran.err, "bootstrap's output besides the one-time display")
    assert f"client id:  {app.app_id}" in rest
    snippet = yaml.safe_load(rest.split("add this target to the rotator's config:", 1)[1])
    assert snippet["targets"][0] | {"sinks": None} == {
        "name": "dime.scheduler",
        "tenant_id": site.tenant,
        "client_id": app.app_id,
        "sinks": None,
    }


async def test_json_output_carries_the_secret_for_scripts_when_it_is_not_stored(site: Site) -> None:
    ran = await site.bootstrap("--output", "json")

    assert ran.code == 0
    document = ran.json()
    app = site.app()
    value = document["secret"].pop("value")
    assert authenticates(site, app, value)
    assert_no_secrets(json.dumps(document) + ran.err, "bootstrap's JSON besides the secret")
    assert document["client_id"] == app.app_id
    assert document["tenant_id"] == site.tenant
    assert [s["status"] for s in document["steps"]] == ["created"] * len(STEPS)
    assert document["secret"]["stored_in"] is None
    assert document["config"]["targets"][0]["client_id"] == app.app_id
    assert document["error"] is None


async def test_a_dry_run_says_what_it_would_create_and_creates_nothing(site: Site) -> None:
    ran = await site.bootstrap("--dry-run")

    assert ran.code == 0
    assert_no_secrets(ran.out + ran.err)
    assert site.apps() == []
    assert ran.statuses() == dict.fromkeys(STEPS, "would create")


# -- re-runs and partial state ---------------------------------------------------------------------


async def test_a_rerun_duplicates_nothing_and_shows_no_secret(site: Site) -> None:
    config = site.admin()
    first = await site.bootstrap(config=config)
    assert first.code == 0
    app = site.app()
    before = (len(site.managed(app)), sorted(app.owners), site.consented(app))

    again = await site.bootstrap(config=config)

    assert again.code == 0
    assert_no_secrets(again.out + again.err, "a re-run's output")
    assert SHOWN_ONCE not in again.out
    assert again.statuses() == dict.fromkeys(STEPS, "present") | {"app settings": "present"}
    assert site.app().object_id == app.object_id
    assert (len(site.managed(app)), sorted(app.owners), site.consented(app)) == before
    tenant = site.emu.directory.require_tenant(site.tenant)
    assert (
        len(
            [
                a
                for a in tenant.assignments
                if a.principal_id != site.rotator.object_id and a.principal_display_name == DEFAULT_NAME
            ]
        )
        == 3
    )


async def test_new_secret_adds_a_second_managed_secret_on_request(site: Site) -> None:
    config = site.admin()
    assert (await site.bootstrap(config=config)).code == 0

    ran = await site.bootstrap("--new-secret", "--output", "json", config=config)

    assert ran.code == 0
    assert len(site.managed(site.app())) == 2
    assert authenticates(site, site.app(), ran.json()["secret"]["value"])


# requiredResourceAccess that requests every Graph permission bootstrap grants (the emulator copies it).
REQUESTS_ALL = [
    {
        "resourceAppId": GRAPH_APP_ID,
        "resourceAccess": [{"id": role_id, "type": "Role"} for role_id in GRAPH_ROLES.values()],
    }
]


def _bare_app(site: Site, **kwargs: Any) -> AppRecord:
    return site.emu.add_app(site.tenant, DEFAULT_NAME, redirect_uris=[DEFAULT_REDIRECT_URI], **kwargs)


def _consent_all(site: Site, app: AppRecord) -> None:
    tenant = site.emu.directory.require_tenant(site.tenant)
    sp = site.emu.directory.sp_by_app_id(tenant, app.app_id)
    assert sp is not None
    for role in GRAPH_ROLES:
        site.emu.grant_app_role(site.tenant, sp.object_id, role)


def app_without_sp_or_consent(site: Site) -> AppRecord:
    return _bare_app(site, service_principal=False, required_resource_access=REQUESTS_ALL)


def app_with_consent_but_no_owner(site: Site) -> AppRecord:
    app = _bare_app(site, required_resource_access=REQUESTS_ALL)
    _consent_all(site, app)
    site.emu.add_password(site.tenant, app.app_id, display_name="secret-rotator 2025-01-01T00:00:00Z")
    return app


def app_missing_a_redirect_uri_and_a_permission(site: Site) -> AppRecord:
    return site.emu.add_app(
        site.tenant,
        DEFAULT_NAME,
        redirect_uris=["https://dime.example.com/own"],
        required_resource_access=[
            {
                "resourceAppId": GRAPH_APP_ID,
                "resourceAccess": [
                    {"id": GRAPH_ROLES["User.Read.All"], "type": "Role"},
                    {"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "type": "Scope"},
                ],
            },  # User.Read, delegated
        ],
    )


def app_with_only_a_hand_made_secret(site: Site) -> AppRecord:
    app = _bare_app(site, owners=[site.rotator.object_id], required_resource_access=REQUESTS_ALL)
    _consent_all(site, app)
    site.emu.add_password(site.tenant, app.app_id)  # "Password uploaded on ...", as the portal names it
    return app


@pytest.mark.parametrize(
    ("seed", "expected"),
    [
        pytest.param(
            app_without_sp_or_consent,
            {
                "service principal": "created",
                "admin consent: User.Read.All": "created",
                "owner": "created",
                "client secret": "created",
                "app settings": "present",
            },
            id="an app without service principal or consent gets both, an owner and a secret",
        ),
        pytest.param(
            app_with_consent_but_no_owner,
            {
                "service principal": "present",
                "admin consent: User.Read.All": "present",
                "owner": "created",
                "client secret": "present",
                "app settings": "present",
            },
            id="an app with consent but no owner gets only the owner",
        ),
        pytest.param(
            app_missing_a_redirect_uri_and_a_permission,
            {
                "service principal": "present",
                "admin consent: User.Read.All": "created",
                "owner": "created",
                "client secret": "created",
                "app settings": "updated",
            },
            id="an app missing the redirect URI and two permissions gains them and keeps its own",
        ),
        pytest.param(
            app_with_only_a_hand_made_secret,
            {
                "service principal": "present",
                "admin consent: User.Read.All": "present",
                "owner": "present",
                "client secret": "created",
                "app settings": "present",
            },
            id="an app with only a hand-made secret gets a managed one and keeps the other",
        ),
    ],
)
async def test_partial_state_is_completed(
    site: Site, seed: Callable[[Site], AppRecord], expected: dict[str, str]
) -> None:
    seeded = seed(site)
    passwords_before = {p.key_id for p in seeded.passwords}

    ran = await site.bootstrap("--output", "table")

    assert ran.code == 0
    statuses = ran.statuses()
    assert statuses["application"] == "present"
    assert {k: statuses[k] for k in expected} == expected
    app = site.app()
    assert app.object_id == seeded.object_id
    site.assert_complete(app)
    assert passwords_before <= {p.key_id for p in app.passwords}
    if statuses["client secret"] == "created":
        secret = shown_secret(ran.out)
        assert authenticates(site, app, secret)
        ran.out = ran.out.replace(secret, "<shown>")
    assert_no_secrets(ran.out + ran.err)


async def test_what_an_app_had_is_kept_when_it_is_completed(site: Site) -> None:
    app_missing_a_redirect_uri_and_a_permission(site)

    assert (await site.bootstrap("--output", "json")).code == 0

    app = site.app()
    assert app.redirect_uris == ["https://dime.example.com/own", DEFAULT_REDIRECT_URI]
    [graph] = app.required_resource_access
    assert {"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "type": "Scope"} in graph["resourceAccess"]
    assert len(graph["resourceAccess"]) == 4


async def test_an_app_found_by_client_id_is_completed_whatever_its_name(site: Site) -> None:
    seeded = site.emu.add_app(site.tenant, "Dime Scheduler (production)", service_principal=False)

    ran = await site.bootstrap("--client-id", seeded.app_id, "--output", "json")

    assert ran.code == 0
    assert site.apps() == []  # no app named Dime.Scheduler was created beside it
    site.assert_complete(site.app("Dime Scheduler (production)"))
    assert ran.json()["config"]["targets"][0]["name"] == "dime-scheduler-production"


# -- refusals and failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--tenant-id", "not-a-guid"], "--tenant-id not-a-guid: must be a GUID", id="a tenant id that is no GUID"
        ),
        pytest.param(["--owner", "rotator"], "--owner rotator: must be a GUID", id="an owner that is no object id"),
        pytest.param(
            ["--store", "https://vault/secret"],
            "write it as keyvault://VAULT/SECRET-NAME",
            id="a store that is no keyvault URI",
        ),
        pytest.param(["--secret-lifetime", "90"], "--secret-lifetime: not a duration", id="a lifetime without a unit"),
        pytest.param(
            ["--redirect-uri", "http://app.example.com/signin"], "must be https", id="a plain-http redirect URI"
        ),
    ],
)
def test_bad_arguments_exit_2_before_any_network_call(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [
        "bootstrap",
        "--tenant-id",
        "11111111-1111-1111-1111-111111111111",
        "--authority-host",
        "https://login.invalid",
        "--graph-url",
        "https://graph.invalid/v1.0",
    ]

    code = cli.main([*base, *args])

    assert code == 2
    err = capsys.readouterr().err
    assert_no_secrets(err)
    assert message in err


async def test_several_apps_with_the_name_exit_2_asking_for_the_client_id(site: Site) -> None:
    site.emu.add_app(site.tenant, DEFAULT_NAME)
    site.emu.add_app(site.tenant, DEFAULT_NAME)

    ran = await site.bootstrap()

    assert ran.code == 2
    assert "2 app registrations are named 'Dime.Scheduler'" in ran.err
    assert "--client-id" in ran.err
    assert all(a.passwords == [] and site.consented(a) == set() for a in site.apps())


async def test_an_unknown_client_id_exits_2(site: Site) -> None:
    ran = await site.bootstrap("--client-id", "22222222-2222-2222-2222-222222222222")

    assert ran.code == 2
    assert "no app registration with this client id" in ran.err
    assert site.apps() == []


@pytest.mark.parametrize(
    ("roles", "failed", "needs", "created"),
    [
        pytest.param(
            (),
            "reading what the tenant has",
            "Application.Read.All",
            [],
            id="an admin who may not even read apps is told so and nothing is created",
        ),
        pytest.param(
            ("Application.Read.All",),
            "application",
            "Application.ReadWrite.All",
            [],
            id="an admin who may only read apps is told to get Application.ReadWrite.All",
        ),
        pytest.param(
            ("Application.ReadWrite.All",),
            "admin consent: Calendars.ReadWrite",
            "AppRoleAssignment.ReadWrite.All",
            ["application", "service principal"],
            id="an admin who may not consent gets the app and its service principal, and is told why",
        ),
    ],
)
async def test_missing_privileges_exit_1_naming_them_and_a_rerun_completes(
    site: Site, roles: tuple[str, ...], failed: str, needs: str, created: list[str]
) -> None:
    ran = await site.bootstrap(config=site.admin(roles))

    assert ran.code == 1
    assert_no_secrets(ran.out + ran.err)
    assert f"bootstrap failed: {failed} failed" in ran.err
    [needs_line] = [line for line in ran.err.splitlines() if line.startswith("needs: ")]
    assert needs in needs_line
    [made_line] = [line for line in ran.err.splitlines() if line.startswith("already created by this run: ")]
    if created:
        for step in created:
            assert f"{step} (" in made_line
        app = site.app()
        assert site.has_sp(app) == ("service principal" in created)
        assert site.consented(app) == set()
        assert site.rotator.object_id not in app.owners
        assert app.passwords == []
    else:
        assert made_line == "already created by this run: nothing"
        assert site.apps() == []
    statuses = ran.statuses()
    assert [statuses.get(s) for s in created] == ["created"] * len(created)
    if failed in statuses:
        assert statuses[failed] == "failed"
        assert statuses["client secret"] == "not attempted"

    again = await site.bootstrap("--output", "json")

    assert again.code == 0
    site.assert_complete(site.app())
    assert authenticates(site, site.app(), again.json()["secret"]["value"])


async def test_a_sign_in_that_fails_is_named_as_the_cause(site: Site) -> None:
    config = site.admin()
    for path in site.tmp.glob("admin-*"):
        if path.suffix != ".yaml":
            path.write_text("not-the-admin-secret-0123456789")

    ran = await site.bootstrap(config=config)

    assert ran.code == 1
    assert_no_secrets(ran.out + ran.err)
    assert "the admin's sign-in got no token for Graph" in ran.err
    assert "AADSTS7000215" in ran.err
    assert "needs: an administrator's sign-in" in ran.err
    assert site.apps() == []


async def test_a_failure_in_json_names_the_privilege_and_what_was_created(site: Site) -> None:
    ran = await site.bootstrap("--output", "json", config=site.admin(("Application.ReadWrite.All",)))

    assert ran.code == 1
    assert_no_secrets(ran.out + ran.err)
    error = ran.json()["error"]
    assert error["reason"] == "permission_denied"
    assert "AppRoleAssignment.ReadWrite.All" in error["needs"]
    assert [m.split(" (")[0] for m in error["already_created"]] == ["application", "service principal"]
    assert ran.json()["secret"] is None


# -- the admin signs in as a user ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "code", "needs"),
    [
        pytest.param("Global Administrator", 0, None, id="a global administrator does it all"),
        pytest.param(
            "Cloud Application Administrator",
            1,
            "Privileged Role Administrator",
            id="a cloud application administrator is told consent needs a privileged role",
        ),
    ],
)
async def test_the_device_code_sign_in(site: Site, role: str, code: int, needs: str | None) -> None:
    site.emu.add_user(site.tenant, "global.admin@contoso.example")  # the tenant's first user, not the one who signs in
    site.emu.add_user(site.tenant, "admin@contoso.example", roles=(role,), device_sign_in=True)

    ran = await site.bootstrap(*device_code_flags(site), "--output", "json", signed_in=False)

    assert ran.code == code
    assert ran.err.count("enter the code") == 1  # one prompt, on stderr: stdout stays JSON
    document = ran.json()
    if needs is None:
        site.assert_complete(site.app())
        assert authenticates(site, site.app(), document["secret"].pop("value"))
    else:
        assert needs in document["error"]["needs"]
        assert site.consented(site.app()) == set()
    assert_no_secrets(json.dumps(document) + ran.err)


async def test_the_device_code_sign_in_serves_the_vault_too_with_one_prompt(site: Site) -> None:
    site.emu.add_user(site.tenant, "admin@contoso.example")
    tokens_before = site.emu.issued_tokens()

    ran = await site.bootstrap(*device_code_flags(site), "--store", site.vault, "--output", "json", signed_in=False)

    assert ran.code == 0
    assert ran.err.count("enter the code") == 1  # Key Vault's token came from the sign-in's refresh token
    app = site.app()
    site.assert_complete(app)
    stored = site.emu.vault_secret(SECRET_NAME)
    assert stored is not None
    assert authenticates(site, app, stored.value)
    assert "value" not in ran.json()["secret"]
    admin_tokens = site.emu.issued_tokens() - tokens_before
    assert len(admin_tokens) == 2, "one for Graph, one for the vault"
    for token in admin_tokens:  # registered with the redactor: even base64-encoded, it would be masked
        assert redact.scrub(base64.b64encode(token.encode()).decode()) == redact.MASK


def device_code_flags(site: Site) -> list[str]:
    return [
        "--device-code",
        "--authority-host",
        site.emu.url,
        "--graph-url",
        site.emu.graph_url,
        "--ca-bundle",
        str(site.emu.ca_file),
    ]


# -- --store ---------------------------------------------------------------------------------------


async def test_store_puts_the_secret_in_key_vault_and_never_in_the_output(site: Site) -> None:
    config = site.admin()

    ran = await site.bootstrap("--store", site.vault, config=config)
    as_json = await site.bootstrap("--store", site.vault, "--output", "json", config=config)

    assert (ran.code, as_json.code) == (0, 0)
    for output in (ran, as_json):
        assert_no_secrets(output.out + output.err, "bootstrap --store's output")
        assert SHOWN_ONCE not in output.out
    app = site.app()
    [credential] = site.managed(app)
    stored = site.emu.vault_secret(SECRET_NAME)
    assert stored is not None
    assert stored.tags == {"managed-by": "secret-rotator", "key-id": credential.key_id, "client-id": app.app_id}
    assert stored.expires is not None
    assert abs(stored.expires - credential.end) < timedelta(seconds=1)
    assert authenticates(site, app, stored.value)
    assert f"stored in {site.vault} (not shown)" in ran.out
    document = as_json.json()
    assert "value" not in document["secret"]
    assert "held by" in document["steps"][-1]["detail"]
    assert document["secret"] | {"expires_on": None, "display_name": None} == {
        "key_id": credential.key_id,
        "display_name": None,
        "expires_on": None,
        "created": False,
        "stored_in": site.vault,
    }
    [sink] = document["config"]["targets"][0]["sinks"]
    assert sink == {
        "type": "keyvault",
        "vault_url": site.emu.vault_url,
        "secret_name": SECRET_NAME,
        "verify_challenge_resource": False,
    }
    assert len(site.emu.vault_versions(SECRET_NAME)) == 1


async def test_store_refuses_a_vault_secret_that_holds_another_apps_secret(site: Site) -> None:
    other = site.emu.add_app(site.tenant, "Another app")
    config = site.admin()
    first = await site.bootstrap(
        "--store", site.vault, "--client-id", other.app_id, "--output", "json", config=config, owner=False
    )
    assert first.code == 0  # the other app's secret, written the way the rotator writes it

    ran = await site.bootstrap("--store", site.vault, config=config)

    assert ran.code == 2
    assert "holds a secret that is not one of this app's" in ran.err
    assert_no_secrets(ran.out + ran.err)
    assert site.apps() == []
    assert len(site.emu.vault_versions(SECRET_NAME)) == 1


async def test_a_vault_the_admin_may_not_use_stops_bootstrap_before_anything_is_created(site: Site) -> None:
    config = site.admin()
    site.emu.kv_deny(site.admin_object_id)

    ran = await site.bootstrap("--store", site.vault, config=config)

    assert ran.code == 1
    assert_no_secrets(ran.out + ran.err)
    assert "bootstrap failed: reading what the tenant has failed: keyvault" in ran.err
    assert "needs: the Key Vault Secrets Officer role" in ran.err
    assert site.apps() == []


async def test_a_secret_the_vault_refuses_is_taken_back_and_never_shown(site: Site) -> None:
    site.emu.faults.add(path=rf"^/secrets/{SECRET_NAME}$", method="PUT", status=403)

    ran = await site.bootstrap("--store", site.vault)

    assert ran.code == 1
    assert_no_secrets(ran.out + ran.err)
    assert SHOWN_ONCE not in ran.out
    assert ran.statuses()["client secret"] == "failed"
    assert "the new secret was removed again" in ran.err
    assert site.app().passwords == []
    assert site.emu.vault_secret(SECRET_NAME) is None


async def test_an_app_whose_creation_answer_was_lost_is_found_and_completed_by_a_rerun(site: Site) -> None:
    config = site.admin()
    site.emu.faults.add(path=r"^/v1\.0/applications$", method="POST", kind="drop", after=True, count=1)

    lost = await site.bootstrap(config=config)

    assert lost.code == 1
    assert "run the same bootstrap command again" in lost.err
    assert len(site.apps()) == 1  # Graph made it; the answer never came back

    again = await site.bootstrap("--output", "json", config=config)

    assert again.code == 0
    site.assert_complete(site.app())
    assert [s["status"] for s in again.json()["steps"]][:2] == ["present", "present"]
    assert_no_secrets(lost.out + lost.err)


# -- handed to rotation ----------------------------------------------------------------------------


async def test_the_bootstrapped_app_is_rotated_by_run_with_no_manual_step(site: Site) -> None:
    ran = await site.bootstrap("--store", site.vault, "--output", "json")
    assert ran.code == 0
    snippet = ran.json()["config"]
    first_key = ran.json()["secret"]["key_id"]
    rotator_secret = site.tmp / "rotator-secret"
    rotator_secret.write_text(site.rotator.secret)
    config = parse_config(
        yaml.safe_dump(
            {
                "cloud": cloud(site.emu),
                "credential": {
                    "type": "client_secret",
                    "tenant_id": site.tenant,
                    "client_id": site.rotator.client_id,
                    "client_secret": {"file": str(rotator_secret)},
                },
                "defaults": {"lifetime": "90d", "grace_period": "1d", "verify_timeout": "20s"},
                "state": {"backend": "file", "path": str(site.tmp / "state")},
                **snippet,
            }
        ),
        "bootstrapped.yaml",
        environ={},
    )
    captured = LogCapture()
    options = PassOptions(flags=Flags(), retry=FAST_RETRY, backoff=FAST_BACKOFF)

    async def run() -> Outcome:
        [result] = await run_pass(config, clock=site.emu.clock, metrics=Metrics(), options=options)
        assert_no_secrets(captured.text, "the pass's log lines")
        return result.outcome

    assert await run() is Outcome.HEALTHY  # the vault holds the bootstrap's secret: nothing to do yet
    site.emu.clock.advance(timedelta(days=61))  # past the renewal time of a 90-day secret
    assert await run() is Outcome.CHANGED
    stored = site.emu.vault_secret(SECRET_NAME)
    assert stored is not None
    assert stored.tags["key-id"] != first_key
    assert authenticates(site, site.app(), stored.value)
    site.emu.clock.advance(timedelta(days=2))  # past the grace period
    await run()
    assert [p.key_id for p in site.app().passwords] == [stored.tags["key-id"]]
