"""What the push sink types (``dimescheduler``, ``webhook``) share: an HTTPS endpoint that cannot be read back.

:class:`PushSettings` is their common keys and how their sink is built; :class:`PushSink` the engine's
sink, whose holding is the receipt its last push wrote (pending before the POST, held after it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import timedelta

from pydantic import Field, field_validator, model_validator

from service.clock import iso
from service.config.fields import Duration, PushUrl
from service.config.references import SecretRef, SecretReference
from service.errors import OutcomeUnknown, RemoteError
from service.model import App, Credential, Holding
from service.ports import Clock, Pusher, Receipt, Sink, StateStore
from service.secret import Secret
from service.sinks.registry import PassClients, SinkSettings, SinkTarget

_HISTORY = 50  # key ids a receipt remembers: far more than an app can hold at once (Graph caps it)

# The push contract's body: these four, under names a sink's `fields:` may change.
PUSH_FIELDS = ("tenantId", "clientId", "clientSecret", "expiresOn")
StaticValue = str | int | float | bool


class PushSettings(SinkSettings):
    """The keys every push sink type has: where to POST, the body's field names, extra static fields."""

    url: PushUrl = Field(
        description="The HTTPS endpoint each new secret is POSTed to, as JSON {tenantId, clientId, clientSecret, "
        "expiresOn}. Plain http only to loopback. No query string: the URL names the sink in logs and "
        "receipts, so secret parameters go in `query`.",
        examples=["https://dimescheduler.example.com/api/exchange-settings"],
    )
    # Kept out of the URL, which names the sink in ids, receipts, logs and `status`.
    query: dict[str, SecretReference] = Field(
        default_factory=dict,
        json_schema_extra={"default": {}},
        description="Query parameters added to the URL when pushing, each value a secret reference (an Azure "
        "Functions `code`).",
        examples=[{"code": {"env": "FUNCTION_KEY"}}],
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        json_schema_extra={"default": {}},
        description="Other names for the body's fields: tenantId, clientId, clientSecret or expiresOn, each "
        "mapped to the name the endpoint expects.",
        examples=[{"clientSecret": "secret", "expiresOn": "validUntil"}],
    )
    static: dict[str, StaticValue] = Field(
        default_factory=dict,
        json_schema_extra={"default": {}},
        description="Extra fields sent in every body with fixed values (text, numbers, true/false); none may "
        "take the name of a pushed field.",
        examples=[{"connector": "exchange"}],
    )
    timeout: Duration = Field(
        default=timedelta(minutes=2),
        description="How long one push may take, retries on 408, 429 and 5xx included (each request at most "
        "60 s); then it counts as failed and the next pass re-sends.",
        examples=["2m"],
    )

    @field_validator("query")
    @classmethod
    def _query_names(cls, value: dict[str, SecretRef]) -> dict[str, SecretRef]:
        if any(not re.fullmatch(r"[A-Za-z0-9_.~-]{1,64}", name) for name in value):
            raise ValueError("a query parameter's name has 1-64 letters, digits and '_', '.', '~', '-'")
        return value

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(PUSH_FIELDS))
        if unknown:
            raise ValueError(f"can rename only {', '.join(PUSH_FIELDS)}; not {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _static_does_not_shadow(self) -> PushSettings:
        names = {self.fields.get(f, f) for f in PUSH_FIELDS}
        clash = sorted(names & set(self.static))
        if clash:
            raise ValueError(f"static fields {', '.join(clash)} would overwrite the pushed values: rename them")
        return self

    def sink_id(self) -> str:
        """``<type>:<url>`` (the URL never carries a query: secret parameters are in ``query:``)."""
        return f"{self.type_name()}:{self.url}"

    def query_references(self) -> Iterator[tuple[str, SecretRef]]:
        """The query parameters' references, as ``query.<name>``."""
        return ((f"query.{name}", ref) for name, ref in self.query.items())

    def push_sink(
        self, target: SinkTarget, clients: PassClients, headers: Mapping[str, str], secret_headers: Mapping[str, Secret]
    ) -> Sink:
        """The engine's sink for this endpoint, with the sink type's own headers."""
        names = {name: self.fields.get(name, name) for name in PUSH_FIELDS}
        pusher = clients.pusher(
            self.url,
            secret_field=names["clientSecret"],
            headers=headers,
            secret_headers=secret_headers,
            query={name: clients.resolve(ref) for name, ref in self.query.items()},
            timeout=self.timeout.total_seconds(),
        )
        fields: dict[str, object] = {
            **self.static,
            names["tenantId"]: target.tenant_id,
            names["clientId"]: target.client_id,
        }
        return PushSink(self.sink_id(), pusher, clients.store, clients.clock, target.name, fields, names)


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

    async def read(self, app: App, *, history: bool = True) -> Holding:
        """The last receipt; with none, a holding that is unknown. StateCorrupt if the receipts cannot be
        read: the engine takes that for an unknown holding too (and sets the document aside in `run`).
        A receipt holds its whole history: ``history`` changes nothing."""
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
        """:meth:`service.ports.Sink.write`: a pending receipt, the POST, then the receipt held. A refused push
        puts the receipt before it back; one whose answer was lost leaves it pending.
        """
        before = await self._store.get(self._target, self.id)
        # `supersedes`: what the consumer may have been given by a pass whose receipt we never saw (receipts
        # lost, another state store). Recorded as handed out, later passes treat them as superseded (gone
        # after the grace period), never as orphans nor as another store's.
        earlier = before.history if before else ()
        added = sorted(k for k in supersedes if k not in earlier and k != credential.key_id)
        history = (*(k for k in earlier if k != credential.key_id), *added, credential.key_id)[-_HISTORY:]
        # Written before the POST: if we crash or time out now, the next pass knows the consumer may
        # have this secret and will neither retire it nor forget to confirm it.
        await self._store.put(self._target, self.id, Receipt(credential.key_id, "pending", self._clock.now(), history))
        body: dict[str, object] = dict(self._fields)
        if credential.end is not None:
            body[self._names.get("expiresOn", "expiresOn")] = iso(credential.end)
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
        """Never: a push endpoint cannot be read back (NotImplementedError)."""
        raise NotImplementedError("a push endpoint cannot be read back")
