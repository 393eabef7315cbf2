"""The ``keyvault`` sink type: a Key Vault secret, which the engine reads its holding back from.

:class:`KeyVaultSink` is its keys in the config; :class:`VaultSink` the engine's sink, which reads the
``key-id`` tag of the latest version, or adopts an untagged hand-made secret by hint and end date.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator

from service.config.fields import HttpsUrl, is_loopback
from service.config.references import SecretRef
from service.model import DEFAULT_MARKER, App, Credential, Holding
from service.ports import NotListed, Sink, Vault, VaultVersion
from service.secret import Secret
from service.sinks.registry import PassClients, SinkSettings, SinkTarget, register


def vault_sink_id(vault_url: str, secret_name: str) -> str:
    """The id of the sink that keeps a target's secret in ``secret_name`` of the vault at ``vault_url``."""
    return f"keyvault:{vault_url}/{secret_name}"


@register
class KeyVaultSink(SinkSettings):
    """A secret in Azure Key Vault: each rotation writes a new version tagged with the credential's key id,
    so the rotator reads back what it holds (and re-sends it to push sinks that lag)."""

    position: ClassVar[int] = 10
    pattern_fixes: ClassVar[dict[str, str]] = {
        "secret_name": "a Key Vault secret name has 1-127 letters, digits and '-'",
    }

    type: Literal["keyvault"] = Field(
        description="`keyvault`: a secret in Azure Key Vault, which the rotator can read back.",
        examples=["keyvault"],
    )
    vault_url: HttpsUrl = Field(
        description="The vault's URL.",
        examples=["https://my-vault.vault.azure.net"],
    )
    secret_name: str = Field(
        pattern=r"^[0-9a-zA-Z-]{1,127}$",
        description="The secret's name in the vault (1-127 letters, digits and '-'). The rotator needs Key Vault "
        "Secrets Officer on it.",
        examples=["dime-exchange-client-secret"],
    )
    verify_challenge_resource: bool = Field(
        default=True,
        description="Check that the vault's sign-in challenge asks for a Key Vault token. false is accepted only "
        "for a vault on loopback (the emulator).",
        examples=[True],
    )

    @field_validator("verify_challenge_resource")
    @classmethod
    def _only_an_emulator_skips_the_check(cls, value: bool, info: ValidationInfo) -> bool:
        vault_url = info.data.get("vault_url")
        if not value and isinstance(vault_url, str) and not is_loopback(urlsplit(vault_url).hostname):
            # Unchecked, any host that answers for vault_url could name its own token audience.
            raise ValueError(
                "false is only for an emulator on loopback (127.0.0.1, ::1, localhost); a real vault's "
                "challenge is always verified: remove the key"
            )
        return value

    def sink_id(self) -> str:
        """``keyvault:<vault_url>/<secret_name>``."""
        return vault_sink_id(self.vault_url, self.secret_name)

    def references(self) -> Iterator[tuple[str, SecretRef]]:
        """None: the rotator's own identity signs in to the vault."""
        return iter(())  # the rotator's own identity signs in to the vault

    def build(self, target: SinkTarget, clients: PassClients) -> Sink:
        """The engine's sink on the pass's client for this vault."""
        vault = clients.vault(self.vault_url, verify_challenge_resource=self.verify_challenge_resource)
        return VaultSink(vault, self.vault_url, self.secret_name, target.client_id, target.policy.marker)


TAG_MANAGED_BY = "managed-by"
TAG_KEY_ID = "key-id"
TAG_CLIENT_ID = "client-id"
# How far a hand-made secret's expiry may sit from its credential's end date and still be adopted.
_ADOPT_SLACK = timedelta(days=1)


def _created(version: VaultVersion) -> datetime:
    assert version.created is not None
    return version.created


class VaultSink:
    """A Key Vault secret; every version carries the key id of the credential it holds."""

    readable = True

    def __init__(self, vault: Vault, vault_url: str, name: str, client_id: str, marker: str = DEFAULT_MARKER) -> None:
        self._vault = vault
        self._name = name
        self._client_id = client_id
        self._marker = marker
        self.id = vault_sink_id(vault_url, name)
        self._versions: list[VaultVersion] = []

    async def read(self, app: App, *, history: bool = True) -> Holding:
        """:meth:`service.ports.Sink.read`: the latest version's ``key-id`` tag, or the one credential an untagged
        secret's hint and expiry fit (adopted); every tagged version's key id is recorded. ``history=False``:
        the current version from the pass's listing of the vault, when it is listed and tagged.
        """
        if not history:
            try:
                held = await self._held_now()
            except NotListed:
                pass
            else:
                if held is not None:
                    return held
        self._versions = await self._vault.list_versions(self._name)
        recorded = frozenset(v.tags[TAG_KEY_ID] for v in self._versions if TAG_KEY_ID in v.tags)
        latest = await self._latest()
        if latest is None or not latest.enabled:
            # Nothing, or a disabled current version: whoever reads the secret gets an error, not a secret.
            return Holding(self.id, None, None, readable=True, recorded=recorded)
        key_id = latest.tags.get(TAG_KEY_ID)
        if key_id is None:
            key_id = await self._adopt(app, latest)
        elif latest.tags.get(TAG_CLIENT_ID, self._client_id) != self._client_id:
            key_id = None  # another app's secret under this name: holds nothing of ours
        return Holding(
            self.id, key_id, latest.created, readable=True, recorded=recorded | ({key_id} if key_id else set())
        )

    async def _held_now(self) -> Holding | None:
        """The holding from the pass's listing of the vault (its current version's tags); None when the
        current version is untagged (adopting it reads its value: the whole read does that)."""
        latest = await self._vault.current(self._name)
        if latest is None:
            # No such secret: it never had a version, so nothing is left out of what it recorded.
            return Holding(self.id, None, None, readable=True)
        if not latest.enabled:
            return Holding(self.id, None, None, readable=True, history=False)
        key_id = latest.tags.get(TAG_KEY_ID)
        if key_id is None:
            return None
        if latest.tags.get(TAG_CLIENT_ID, self._client_id) != self._client_id:
            return Holding(self.id, None, None, readable=True, history=False)
        return Holding(self.id, key_id, latest.created, readable=True, recorded=frozenset({key_id}), history=False)

    async def _latest(self) -> VaultVersion | None:
        """The version a consumer reading the secret gets: the newest one.

        ``created`` has whole seconds, so two versions written in the same second (two passes at once)
        tie; then the vault itself is asked which one is current.
        """
        dated = [v for v in self._versions if v.created is not None]
        if not dated:
            return None
        newest = max(_created(v) for v in dated)
        tied = [v for v in dated if v.created == newest]
        if len(tied) == 1:
            return tied[0]
        return await self._vault.read_latest(self._name)

    async def _adopt(self, app: App, latest: VaultVersion) -> str | None:
        """The credential a hand-made (untagged) secret belongs to: hint and end date must fit one."""
        value = await self._vault.read_value(self._name, latest.version)
        matches = [
            c
            for c in app.credentials
            if c.hint
            and c.hint == value.hint
            and (latest.expires_on is None or c.end is None or abs(c.end - latest.expires_on) <= _ADOPT_SLACK)
        ]
        return matches[0].key_id if len(matches) == 1 else None

    async def write(self, credential: Credential, secret: Secret, supersedes: frozenset[str] = frozenset()) -> None:
        # `supersedes` is for sinks with receipts: every version here records its own key id.
        """:meth:`service.ports.Sink.write`: a new version with the credential's end as its expiry and the tags."""
        tags = {TAG_MANAGED_BY: self._marker, TAG_KEY_ID: credential.key_id, TAG_CLIENT_ID: self._client_id}
        version = await self._vault.write(self._name, secret, credential.end, tags)
        self._versions.append(version)

    async def read_secret(self, key_id: str) -> Secret:
        """:meth:`service.ports.Sink.read_secret`: the newest version tagged with ``key_id`` (or the adopted one)."""
        tagged = [v for v in self._versions if v.tags.get(TAG_KEY_ID) == key_id and v.created is not None]
        if tagged:
            return await self._vault.read_value(self._name, max(tagged, key=_created).version)
        # An adopted, untagged secret: the latest version is the one read() matched.
        return await self._vault.read_value(self._name)
