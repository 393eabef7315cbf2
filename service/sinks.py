"""The consumers of a secret as the engine sees them: read what they hold, hand them a new secret.

:class:`VaultSink` reads its holding back from Key Vault (the ``key-id`` tag of the latest version, or
an untagged hand-made secret adopted by hint and end date). :class:`PushSink` cannot be read back: its
holding is the receipt its last push wrote (pending before the POST, held after it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from service.errors import OutcomeUnknown, RemoteError
from service.model import DEFAULT_MARKER, App, Credential, Holding
from service.ports import Clock, Pusher, Receipt, StateStore, Vault, VaultVersion
from service.secret import Secret

TAG_MANAGED_BY = "managed-by"
TAG_KEY_ID = "key-id"
TAG_CLIENT_ID = "client-id"
_HISTORY = 50  # key ids a receipt remembers: far more than an app can hold at once (Graph caps it)
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
        self.id = f"keyvault:{vault_url}/{name}"
        self._versions: list[VaultVersion] = []

    async def read(self, app: App) -> Holding:
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
        return Holding(self.id, key_id, latest.created, readable=True,
                       recorded=recorded | ({key_id} if key_id else set()))

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
            if c.hint and c.hint == value.hint
            and (latest.expires_on is None or c.end is None or abs(c.end - latest.expires_on) <= _ADOPT_SLACK)
        ]
        return matches[0].key_id if len(matches) == 1 else None

    async def write(self, credential: Credential, secret: Secret, supersedes: frozenset[str] = frozenset()) -> None:
        # `supersedes` is for sinks with receipts: every version here records its own key id.
        tags = {TAG_MANAGED_BY: self._marker, TAG_KEY_ID: credential.key_id, TAG_CLIENT_ID: self._client_id}
        version = await self._vault.write(self._name, secret, credential.end, tags)
        self._versions.append(version)

    async def read_secret(self, key_id: str) -> Secret:
        tagged = [v for v in self._versions if v.tags.get(TAG_KEY_ID) == key_id and v.created is not None]
        if tagged:
            return await self._vault.read_value(self._name, max(tagged, key=_created).version)
        # An adopted, untagged secret: the latest version is the one read() matched.
        return await self._vault.read_value(self._name)


class PushSink:
    """An HTTPS endpoint (Dime.Scheduler); a receipt in the state store says what it was last given."""

    readable = False

    def __init__(
        self,
        sink_id: str,
        pusher: Pusher,
        store: StateStore,
        clock: Clock,
        target: str,
        fields: dict[str, object],
        names: dict[str, str],
    ) -> None:
        self.id = sink_id
        self._pusher = pusher
        self._store = store
        self._clock = clock
        self._target = target
        self._fields = fields  # static fields and tenantId/clientId under their configured names
        self._names = names  # the push contract's field names -> configured names

    async def read(self, app: App) -> Holding:
        """The last receipt; with none, a holding that is unknown. StateCorrupt if the receipts cannot be
        read: the engine takes that for an unknown holding too (and sets the document aside in `run`)."""
        receipt = await self._store.get(self._target, self.id)
        if receipt is None:
            return Holding(self.id, None, None, readable=False, known=False)
        return Holding(
            self.id,
            receipt.key_id,
            receipt.since,
            readable=False,
            pending=receipt.status == "pending",
            recorded=frozenset(receipt.history) | {receipt.key_id},
        )

    async def write(self, credential: Credential, secret: Secret, supersedes: frozenset[str] = frozenset()) -> None:
        before = await self._store.get(self._target, self.id)
        # `supersedes`: what the consumer may have been given by a pass whose receipt we never saw (receipts
        # lost, another state store). Recorded as handed out, later passes treat them as superseded (gone
        # after the grace period), never as orphans nor as another store's.
        earlier = before.history if before else ()
        added = sorted(k for k in supersedes if k not in earlier and k != credential.key_id)
        history = (*(k for k in earlier if k != credential.key_id), *added, credential.key_id)[-_HISTORY:]
        # Written before the POST: if we crash or time out now, the next pass knows the consumer may
        # have this secret and will neither retire it nor forget to confirm it.
        await self._store.put(
            self._target, self.id, Receipt(credential.key_id, "pending", self._clock.now(), history)
        )
        body: dict[str, object] = dict(self._fields)
        if credential.end is not None:
            body[self._names.get("expiresOn", "expiresOn")] = credential.end.strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            await self._pusher.push(body, secret, idempotency_key=credential.key_id)
        except OutcomeUnknown:
            raise  # the receipt stays pending: the consumer may have it
        except RemoteError:
            # Refused for sure: the consumer does not have it; what it held before still stands.
            if before is not None:
                await self._store.put(self._target, self.id, before)
            raise
        await self._store.put(self._target, self.id, Receipt(credential.key_id, "held", self._clock.now(), history))

    async def read_secret(self, key_id: str) -> Secret:
        raise NotImplementedError("a push endpoint cannot be read back")
