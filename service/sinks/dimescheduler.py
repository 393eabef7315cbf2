"""The ``dimescheduler`` sink type: Dime.Scheduler's configuration endpoint, the push with an X-API-KEY header."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import Field

from service.config.references import SecretRef, SecretReference
from service.ports import Sink
from service.sinks.push import PushSettings
from service.sinks.registry import PassClients, SinkTarget, register


@register
class DimeSchedulerSink(PushSettings):
    """Dime.Scheduler's configuration endpoint: the push contract with the X-API-KEY header."""

    position: ClassVar[int] = 20

    type: Literal["dimescheduler"] = Field(
        description="`dimescheduler`: Dime.Scheduler's configuration endpoint, a push with an X-API-KEY header. "
        "It cannot be read back: receipts in the state store say what it was given.",
        examples=["dimescheduler"],
    )
    api_key: SecretReference = Field(
        description="Where Dime.Scheduler's API key is, sent as X-API-KEY: {env: NAME} or {file: PATH}, never "
        "the key itself.",
        examples=[{"file": "/var/run/secrets/dimescheduler/api-key"}],
    )

    def references(self) -> Iterator[tuple[str, SecretRef]]:
        """The sink's secret references: ``api_key`` and any ``query.<name>``."""
        yield "api_key", self.api_key
        yield from self.query_references()

    def build(self, target: SinkTarget, clients: PassClients) -> Sink:
        """A push sink to the endpoint, its ``X-API-KEY`` header from ``api_key``."""
        return self.push_sink(target, clients, headers={}, secret_headers={"X-API-KEY": clients.resolve(self.api_key)})
