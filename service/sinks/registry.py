"""Sink types: one module each in this package, and the registry the rest of the service iterates over.

A sink type is a subclass of :class:`SinkSettings`: the pydantic model of its keys under
``targets[].sinks[]`` (``type: <its name>``), which also says what the sink is called in receipts and
logs (``sink_id``), which of its keys are secret references (``references``), and how the engine's
sink is built from the pass's shared clients (``build``). Its module registers it with
:func:`register`. The first time the sink types are asked for, every module of this package is
imported, so a new sink type is one new module here: the config file's union of sink keys, its JSON
schema, the wording of problems, the reference checks and the wiring of a pass all follow the registry.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol, TypeVar, get_args, get_origin

from service.config.fields import StrictModel
from service.config.references import SecretRef
from service.model import Policy
from service.ports import Clock, Pusher, Sink, StateStore, Vault
from service.secret import Secret


@dataclass(frozen=True)
class SinkTarget:
    """The target a sink serves, as a sink type needs it to build the sink."""

    name: str
    tenant_id: str
    client_id: str
    policy: Policy


class PassClients(Protocol):
    """What a sink is built from: the pass's shared clients and state, for one target (service.wiring)."""

    @property
    def store(self) -> StateStore:
        """The state store of the pass (push receipts)."""
        ...

    @property
    def clock(self) -> Clock:
        """The pass's clock."""
        ...

    def resolve(self, reference: SecretRef) -> Secret:
        """The secret a reference names, read now; ConfigError saying why it cannot be."""
        ...

    def vault(self, vault_url: str, *, verify_challenge_resource: bool) -> Vault:
        """The Key Vault client for ``vault_url``, signed in as the target's identity; one per vault and pass."""
        ...

    def pusher(
        self,
        url: str,
        *,
        secret_field: str,
        headers: Mapping[str, str],
        secret_headers: Mapping[str, Secret],
        query: Mapping[str, Secret],
        timeout: float,
    ) -> Pusher:
        """An HTTPS push to ``url`` over the pass's shared session."""
        ...


class SinkSettings(StrictModel):
    """The base of every sink type's keys. A subclass declares ``type: Literal["<name>"]`` and its keys."""

    # Where the type stands among the others: the JSON schema and the messages list the types in this order.
    position: ClassVar[int] = 100
    # How a key of this type whose value misses its pattern is fixed, by key name (as problems word it).
    pattern_fixes: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def type_name(cls) -> str:
        """The value of ``type:`` that selects this sink type."""
        return _type_name(cls)

    @abstractmethod
    def sink_id(self) -> str:
        """The sink's stable id within a target: what receipts and logs call it (never anything secret)."""

    @abstractmethod
    def references(self) -> Iterator[tuple[str, SecretRef]]:
        """Each secret reference among this sink's keys, with its key path below the sink."""

    @abstractmethod
    def build(self, target: SinkTarget, clients: PassClients) -> Sink:
        """The engine's sink for this config; ConfigError if a secret reference cannot be resolved."""


@functools.cache
def _type_name(cls: type[SinkSettings]) -> str:
    # Once per class: a sink's id asks for it, 10,000 times in a fleet's config, and pydantic's model_fields
    # is slow to reach.
    field = cls.model_fields.get("type")
    names = get_args(field.annotation) if field is not None and get_origin(field.annotation) is Literal else ()
    if len(names) != 1 or not isinstance(names[0], str):
        raise TypeError(f"{cls.__name__} must declare its key `type: Literal['<name>']`")
    return str(names[0])


S = TypeVar("S", bound=type[SinkSettings])

_types: dict[str, type[SinkSettings]] = {}
_listeners: list[Callable[[], None]] = []


def register(sink_type: S) -> S:
    """Make a sink type known (a class decorator); a second type of the same name is refused."""
    name = sink_type.type_name()
    if _types.get(name, sink_type) is not sink_type:
        taken = _types[name].__qualname__
        raise ValueError(f"two sink types are called {name!r}: {taken} and {sink_type.__qualname__}")
    _types[name] = sink_type
    for listener in _listeners:
        listener()
    return sink_type


def unregister(name: str) -> None:
    """Forget the sink type ``name`` (one registered for a while, e.g. by a test)."""
    if _types.pop(name, None) is not None:
        for listener in _listeners:
            listener()


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener`` whenever a sink type is registered or forgotten (the config model rebuilds its union)."""
    _listeners.append(listener)


def sink_types() -> list[type[SinkSettings]]:
    """Every sink type, in the order the config lists them; the first call imports this package's modules."""
    _import_this_package()
    return sorted(_types.values(), key=lambda sink_type: sink_type.position)


@functools.cache
def _import_this_package() -> None:
    """Import every module of this package: each registers the sink type it defines."""
    package = importlib.import_module(__package__ or "service.sinks")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def sink_id(sink: SinkSettings) -> str:
    """The sink's stable id within a target: what receipts and logs call it."""
    return sink.sink_id()
