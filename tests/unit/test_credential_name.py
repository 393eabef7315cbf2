"""Which credentials are this service's: exactly the display name it writes, nothing that merely looks like it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from service.model import Credential, credential_name, parse_credential_name

MARKER = "secret-rotator"
WHEN = datetime(2026, 1, 5, 7, 8, 9, tzinfo=UTC)

NAMES: dict[str, tuple[str | None, str, datetime | None]] = {
    "the name this service writes is ours": ("secret-rotator 2026-01-05T07:08:09Z", MARKER, WHEN),
    "another installation's marker that starts with ours is not ours": (
        "secret-rotator-staging 2026-01-05T07:08:09Z",
        MARKER,
        None,
    ),
    "a person's break-glass secret named after the marker is not ours": (
        "secret-rotator: break-glass 2026-01-05",
        MARKER,
        None,
    ),
    "the bare marker is not ours": ("secret-rotator", MARKER, None),
    "the marker and a space with nothing after it is not ours": ("secret-rotator ", MARKER, None),
    "two spaces after the marker is not ours": ("secret-rotator  2026-01-05T07:08:09Z", MARKER, None),
    "text after the timestamp is not ours": ("secret-rotator 2026-01-05T07:08:09Z (copy)", MARKER, None),
    "a timestamp without the Z is not ours": ("secret-rotator 2026-01-05T07:08:09", MARKER, None),
    "a timestamp with fractions of a second is not ours": ("secret-rotator 2026-01-05T07:08:09.5Z", MARKER, None),
    "a timestamp without zero padding is not ours": ("secret-rotator 2026-1-5T7:8:9Z", MARKER, None),
    "a date that does not exist is not ours": ("secret-rotator 2026-02-30T07:08:09Z", MARKER, None),
    "a compact timestamp is not ours": ("secret-rotator 20260105T070809Z", MARKER, None),
    "the marker in another case is not ours": ("Secret-Rotator 2026-01-05T07:08:09Z", MARKER, None),
    "no name is not ours": (None, MARKER, None),
    "an empty name is not ours": ("", MARKER, None),
    "a configured marker with a space in it works the same way": (
        "dime rotator 2026-01-05T07:08:09Z",
        "dime rotator",
        WHEN,
    ),
    "the default marker's name is not ours under another configured marker": (
        "secret-rotator 2026-01-05T07:08:09Z",
        "other-rotator",
        None,
    ),
}


@pytest.mark.parametrize(("name", "marker", "created"), NAMES.values(), ids=NAMES.keys())
def test_a_name_is_ours_only_when_it_is_exactly_what_we_write(
    name: str | None, marker: str, created: datetime | None
) -> None:
    assert parse_credential_name(name, marker) == created
    credential = Credential("k", name, None, None, None)
    assert credential.managed(marker) is (created is not None)


WRITTEN = {
    "a UTC time": WHEN,
    "a time in another zone is written in UTC": WHEN.astimezone(timezone(timedelta(hours=-5))),
    "microseconds are left out": WHEN.replace(microsecond=999_999),
}


@pytest.mark.parametrize("when", WRITTEN.values(), ids=WRITTEN.keys())
def test_every_name_we_write_parses_back_to_its_second(when: datetime) -> None:
    name = credential_name(MARKER, when)

    assert name == "secret-rotator 2026-01-05T07:08:09Z"
    assert parse_credential_name(name, MARKER) == when.replace(microsecond=0)
