"""Whether a plan needs what the sinks ever recorded, or only what they hold now.

A pass reads a Key Vault secret's current version from one listing of its vault: the holding then has
``history`` False and its ``recorded`` names that version's key id alone. Every rule that reads
:attr:`Facts.recorded` asks it about a credential no sink holds (is a managed one an orphan, superseded,
another store's; may --revoke-previous take an unmanaged one), so the rest of the history matters only
when such a credential could be retired. :func:`needs_history` is that rule; the engine reads the versions
of a target's secrets only when it answers True.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.model import NO_FLAGS, Credential, Flags, Holding, Policy
from service.policy.facts import in_use


def needs_history(
    credentials: Sequence[Credential], holdings: Sequence[Holding], policy: Policy, flags: Flags = NO_FLAGS
) -> bool:
    """Some holding names only what its sink holds now, and a credential on the app that no sink holds could
    be retired: a managed one, any one under ``retire_unmanaged``, or any one under --revoke-previous."""
    if all(h.history for h in holdings):
        return False
    held = in_use(credentials, holdings)
    retirable = policy.retire_unmanaged or flags.revoke_previous
    return any(c.key_id not in held and (retirable or c.managed(policy.marker)) for c in credentials)
