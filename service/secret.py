"""A secret value that cannot be printed by accident.

Every client secret the service handles travels as a :class:`Secret`. Its ``repr``/``str``/``format``
are masked, it refuses to be pickled, and each value is registered with :mod:`service.redact` so that
the last log processor can scrub it from any rendered line, even one built from an SDK's message.
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn

from service import redact

MASK = redact.MASK


class Secret:
    """An opaque secret string; ``reveal()`` is the one way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError("a secret must be a non-empty string")
        self._value = value
        redact.register(value)

    def reveal(self) -> str:
        """The secret text; call it only at the point where it leaves the process (a request body)."""
        return self._value

    @property
    def hint(self) -> str:
        """The first three characters, as Entra shows them in a credential's `hint`."""
        return self._value[:3]

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, len(self._value)))

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret is never serialised")

    def __getstate__(self) -> NoReturn:
        raise TypeError("a Secret is never serialised")

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self
