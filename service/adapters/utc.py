"""Times from the SDKs as aware UTC datetimes: Graph's parser and Key Vault's attributes differ."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC; a naive time (as some SDK models give) is taken to be UTC already."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
