"""The push sink as the engine sees it: an HTTPS endpoint that cannot be read back.

:class:`PushSink`'s holding is the receipt its last push wrote (pending before the POST, held after it).
"""

from __future__ import annotations

from service.errors import OutcomeUnknown, RemoteError
from service.model import DEFAULT_MARKER, App, Credential, Holding
from service.ports import Clock, Pusher, Receipt, StateStore
from service.secret import Secret


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
        marker: str = DEFAULT_MARKER,
    ) -> None:
        self.id = sink_id
        self._pusher = pusher
        self._store = store
        self._clock = clock
        self._target = target
        self._fields = fields  # static fields and tenantId/clientId under their configured names
        self._names = names  # the push contract's field names -> configured names
        self._marker = marker
        self._may_hold: tuple[str, ...] = ()  # with no receipt: what the consumer may hold (see write)

    async def read(self, app: App) -> Holding:
        receipt = await self._store.get(self._target, self.id)
        if receipt is None:
            now = self._clock.now()
            self._may_hold = tuple(
                c.key_id for c in app.credentials if c.managed(self._marker) and not c.expired(now)
            )
            return Holding(self.id, None, None, readable=False, known=False)
        return Holding(
            self.id,
            receipt.key_id,
            receipt.since,
            readable=False,
            pending=receipt.status == "pending",
            recorded=frozenset(receipt.history) | {receipt.key_id},
        )

    async def write(self, credential: Credential, secret: Secret) -> None:
        before = await self._store.get(self._target, self.id)
        # The first receipt after none at all: the consumer may have been given any of our valid
        # credentials by a pass whose receipt we never saw, so each is recorded as handed out. Later
        # passes then treat them as superseded (gone after the grace period), never as orphans. Hand-made
        # ones are left out: they are never orphans, and recording them would let --revoke-previous take them.
        earlier = before.history if before else self._may_hold
        history = tuple(k for k in earlier if k != credential.key_id)
        history = (*history, credential.key_id)[-50:]
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
