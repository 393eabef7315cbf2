"""The ``webhook`` sink type: any HTTPS endpoint taking the push's JSON body, authenticated by headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from service.config.references import SecretRef, SecretReference
from service.ports import Sink
from service.sinks.push import PushSettings
from service.sinks.registry import PassClients, SinkTarget, register

# Header names that carry credentials: their values must be references (secret_headers), never inline.
_CREDENTIAL_WORDS = re.compile(r"auth|token|secret|passw|cookie|credential|signature|session|api-?key|jwt|bearer", re.I)
_CREDENTIAL_PARTS = frozenset({"key", "sig", "pwd", "pass", "code"})
_OWN_HEADERS = frozenset({"idempotency-key"})  # the credential's keyId, set by the sink


def credential_header(name: str) -> bool:
    """Whether a header named so carries a credential (Authorization, X-API-Key, *Token*, Cookie, ...)."""
    parts = set(re.split(r"[-_.\s]+", name.lower()))
    return bool(_CREDENTIAL_WORDS.search(name)) or bool(parts & _CREDENTIAL_PARTS)


@register
class WebhookSink(PushSettings):
    """Any HTTPS endpoint taking the same JSON body; authentication through headers."""

    position: ClassVar[int] = 30

    type: Literal["webhook"] = Field(
        description="`webhook`: any HTTPS endpoint that takes the same JSON body, authenticated by headers. It "
        "cannot be read back: receipts in the state store say what it was given.",
        examples=["webhook"],
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        json_schema_extra={"default": {}},
        description="Extra headers with fixed values. None that carries a credential (Authorization, *Key*, "
        "*Token*, Cookie, ...): those go in secret_headers.",
        examples=[{"X-Tenant": "contoso"}],
    )
    secret_headers: dict[str, SecretReference] = Field(
        default_factory=dict,
        json_schema_extra={"default": {}},
        description="Headers whose values are secrets, each a reference {env: NAME} or {file: PATH}.",
        examples=[{"Authorization": {"env": "WEBHOOK_AUTHORIZATION"}}],
    )

    @field_validator("headers")
    @classmethod
    def _no_inline_credentials(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.lower() in _OWN_HEADERS:
                raise ValueError(f"{name} is set by the sink itself: remove it")
            if credential_header(name):
                # The name, never the value: the value is probably the credential itself.
                raise ValueError(
                    f"{name} carries a credential: an inline value is refused; move it to "
                    f"secret_headers: {{{name}: {{env: NAME}}}} (or {{file: PATH}})"
                )
        return value

    def references(self) -> Iterator[tuple[str, SecretRef]]:
        """The sink's secret references: each ``secret_headers.<name>`` and ``query.<name>``."""
        yield from ((f"secret_headers.{name}", ref) for name, ref in self.secret_headers.items())
        yield from self.query_references()

    def build(self, target: SinkTarget, clients: PassClients) -> Sink:
        """A push sink to the endpoint with its headers and secret headers."""
        secret_headers = {name: clients.resolve(ref) for name, ref in self.secret_headers.items()}
        return self.push_sink(target, clients, headers=dict(self.headers), secret_headers=secret_headers)
