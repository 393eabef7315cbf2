"""Maintenance windows: a plan's creations and retirements wait for the next window, unless safety cannot wait.

:func:`windowed` is asked last, of the actions the other rules planned. Outside every window of the
target's ``windows``, the creations and retirements give way to one WAIT action that says when the next
window opens (re-syncs, which only repair a sink that lags behind, and BLOCKED actions, which need a person
anyway, stay). Two things beat the window:

- the operator's ``--force`` or ``--revoke-previous`` (a person is at the keyboard: a leaked secret must not
  wait for Monday);
- safety (:func:`overriding`): the secret some consumer depends on would expire, or come within
  ``window_margin`` of expiring, before the next window opens. Then the rotation goes ahead now (with the
  retirements that make room for it), says why in ``window_overridden``, and the other retirements wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from service.model import Action, Kind, Reason
from service.policy.facts import Facts, may_be_held
from service.windows import is_open, next_opening

WINDOWED = frozenset({Kind.CREATE, Kind.RETIRE})


def deadline(facts: Facts) -> datetime | None:
    """When the first consumer's secret stops working, as far as the sinks tell: the earliest end of what
    each sink holds; for a sink whose holding is unknown, of every credential it may hold; ``now`` for a
    sink that holds nothing that works. None when every held secret never expires."""
    ends: list[datetime] = []
    valid = may_be_held(facts.now, facts.credentials)
    for h in facts.holdings:
        key = facts.held[h.sink]
        if not h.known:
            held = valid
        elif key is None:
            ends.append(facts.now)
            continue
        else:
            held = [facts.by_id[key]]
        ends += [c.end for c in held if c.end is not None] if held else [facts.now]
    return min(ends, default=None)


def opening_text(at: datetime, facts: Facts) -> str:
    """When a window opens, in UTC and in the zone of the window that opens then."""
    zones = [w.zone for w in facts.policy.windows if next_opening([w], facts.now) == at]
    local = f" ({at.astimezone(ZoneInfo(zones[0])):%a %Y-%m-%d %H:%M} {zones[0]})" if zones else ""
    return f"{at:%Y-%m-%d %H:%M}Z{local}"


def overriding(facts: Facts, opens: datetime | None) -> str | None:
    """Why a rotation cannot wait for the window opening at ``opens`` (None: it can wait)."""
    end = deadline(facts)
    if end is None:
        return None
    if opens is not None and end - facts.policy.window_margin > opens:
        return None
    when = "has expired" if end <= facts.now else f"expires at {end:%Y-%m-%d %H:%M}Z"
    until = f"the next window opens at {opening_text(opens, facts)}" if opens else "no window opens within a week"
    return (
        f"outside the maintenance windows, but a secret a consumer depends on {when} and {until}: "
        f"less than window_margin before expiry, so it is rotated now"
    )


def windowed(facts: Facts, actions: Sequence[Action]) -> list[Action]:
    """``actions`` as the target's maintenance windows allow them now (see the module's docstring)."""
    policy, now = facts.policy, facts.now
    gated = [a for a in actions if a.kind in WINDOWED]
    if not policy.windows or not gated or facts.flags.force or facts.flags.revoke_previous:
        return list(actions)
    if is_open(policy.windows, now):
        return list(actions)
    opens = next_opening(policy.windows, now)
    create = next((a for a in gated if a.kind is Kind.CREATE), None)
    why = overriding(facts, opens) if create is not None else None
    if why is not None:
        # The rotation and the retirements that make room for it go now; the rest waits for the window.
        now_allowed = [
            replace(a, window_overridden=why) if a is create else a
            for a in actions
            if not (a.kind is Kind.RETIRE and a.after_rotation)
        ]
        waiting = [a for a in actions if a.kind is Kind.RETIRE and a.after_rotation]
        return now_allowed + ([wait(facts, opens, waiting)] if waiting else [])
    kept = [a for a in actions if a.kind not in WINDOWED]
    return [*kept, wait(facts, opens, gated)]


def wait(facts: Facts, opens: datetime | None, waiting: Sequence[Action]) -> Action:
    """The one WAIT action that stands for the creations and retirements that wait for the window."""
    what = "; ".join(f"{a.kind} ({a.reason}): {a.message}" for a in waiting)
    when = f"opens at {opening_text(opens, facts)}" if opens else "none opens within a week"
    return Action(Kind.WAIT, Reason.OUTSIDE_WINDOW, f"waiting for window, {when}: {what}", waits_until=opens)
