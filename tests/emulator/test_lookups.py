"""The emulator's shortcuts for a fleet (an appId index, tokens whose signature was already checked) answer
exactly what the slow way would: a deleted app is gone, an expired token is refused however often it
was accepted before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.emulator.clock import Clock
from service.emulator.directory import Directory
from service.emulator.tokens import CLOCK_SKEW_SECONDS, TokenError, TokenSigner

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_an_app_is_found_by_its_app_id_until_it_is_deleted_and_a_new_one_is_found_after() -> None:
    directory = Directory(Clock())
    tenant = directory.add_tenant(None)
    apps = [directory.create_app(tenant, f"app {i}") for i in range(50)]
    for app in apps:
        assert directory.app_by_app_id(tenant, app.app_id.upper()) is app
        assert directory.sp_by_app_id(tenant, app.app_id) is None

    gone = apps[10]
    del tenant.apps[gone.object_id]  # as Graph's DELETE /applications/{id} does
    assert directory.app_by_app_id(tenant, gone.app_id) is None
    again = directory.create_app(tenant, "again", app_id=gone.app_id)
    assert directory.app_by_app_id(tenant, gone.app_id) is again
    principal = directory.create_sp(tenant, again.app_id)
    assert directory.sp_by_app_id(tenant, again.app_id) is principal
    assert directory.app_by_app_id(tenant, "00000000-0000-0000-0000-00000000dead") is None


AUDIENCE = frozenset({"https://graph.microsoft.com"})


def test_a_token_accepted_before_is_refused_once_it_expired_or_for_another_audience() -> None:
    signer = TokenSigner()
    token = signer.sign({"aud": "https://graph.microsoft.com", "exp": int(NOW.timestamp()) + 3600})

    for _ in range(3):
        assert signer.verify(token, now=NOW, audiences=AUDIENCE)["aud"] == "https://graph.microsoft.com"
    with pytest.raises(TokenError, match="invalid audience"):
        signer.verify(token, now=NOW, audiences=frozenset({"https://vault.azure.net"}))
    later = NOW + timedelta(seconds=3600 + CLOCK_SKEW_SECONDS + 1)
    with pytest.raises(TokenError, match="expired"):
        signer.verify(token, now=later, audiences=AUDIENCE)


def test_a_token_with_another_signature_is_refused_though_its_claims_were_accepted() -> None:
    signer = TokenSigner()
    token = signer.sign({"aud": "https://graph.microsoft.com", "exp": int(NOW.timestamp()) + 3600})
    signer.verify(token, now=NOW, audiences=AUDIENCE)
    forged = token.rpartition(".")[0] + "." + TokenSigner().sign({"x": 1}).rpartition(".")[2]

    with pytest.raises(TokenError, match="signature validation failed"):
        signer.verify(forged, now=NOW, audiences=AUDIENCE)
