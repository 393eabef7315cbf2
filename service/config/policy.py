"""The policy keys (in `defaults` and on a target), and how the layers merge into one Policy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from service.config.fields import Duration, StrictModel
from service.config.windows import MaintenanceWindow
from service.durations import format_duration
from service.model import Policy


class PolicyOverrides(StrictModel):
    """Policy keys; in `defaults` and, to override them, on a target."""

    lifetime: Duration | None = Field(
        default=None,
        description="How long each new secret is valid (its end date). A tenant's app management policy that "
        "allows less caps it. Built-in: 90d.",
        examples=["90d"],
    )
    renew_before: Duration | None = Field(
        default=None,
        description="Rotate when the secret in use has this long left; never earlier than half a secret's own "
        "lifetime. Give renew_before or renew_before_ratio, not both. Built-in: not set (renew_before_ratio).",
        examples=["30d"],
    )
    renew_before_ratio: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Rotate when this fraction of the secret in use's own lifetime is left (between 0 and 1). "
        "Used when renew_before is not set. Built-in: 1/3.",
        examples=[0.33],
    )
    grace_period: Duration | None = Field(
        default=None,
        description="How long every sink must have held the new secret before the previous one is removed: "
        "time for every consumer to pick it up. Built-in: 1d.",
        examples=["1d"],
    )
    verify_timeout: Duration | None = Field(
        default=None,
        description="How long a new secret may take to get a token (Entra replicates a new secret with a delay) "
        "before it is removed again and the rotation fails. Built-in: 5m.",
        examples=["5m"],
    )
    in_flight_timeout: Duration | None = Field(
        default=None,
        description="How old a secret this service created, that no sink ever recorded, must be before it is "
        "removed as an orphan (a crashed pass's leftover); a younger one may still be on its way. Built-in: 15m.",
        examples=["15m"],
    )
    max_credentials: int | None = Field(
        default=None,
        ge=2,
        le=100,
        description="The most secrets the app may hold at once (2-100); an old one is removed first when a new "
        "one would exceed it. A target whose sinks cannot be read back (push only) keeps one of them free to "
        "repair a push that was never confirmed. Built-in: 4.",
        examples=[4],
    )
    retire_unmanaged: bool | None = Field(
        default=None,
        description="Also remove secrets this service did not create (any other display name) once no sink "
        "holds them and the grace period has passed. Built-in: false, others' secrets are left alone.",
        examples=[False],
    )
    marker: str | None = Field(
        default=None,
        min_length=3,
        max_length=60,
        description="The display name of the secrets this service creates is exactly the marker, one space and "
        "the UTC time; only a secret named so is its own. Change it only to run two installations on one app. "
        "Built-in: secret-rotator.",
        examples=["secret-rotator"],
    )

    windows: list[MaintenanceWindow] | None = Field(
        default=None,
        description="Maintenance windows: new secrets are created and old ones removed only while one is open "
        "(in `run` and `daemon` alike; `plan` says when the next opens). Safety beats the window: when the "
        "secret in use would expire, or come within window_margin of it, before the next window opens, the "
        "rotation happens at once and logs rotation.window_overridden. A target's list replaces the one in "
        "defaults; [] means any time. Built-in: none, any time.",
        examples=[[{"days": ["mon-fri"], "start": "08:00", "end": "17:00", "time_zone": "Europe/Amsterdam"}]],
    )
    window_margin: Duration | None = Field(
        default=None,
        description="With windows: rotate outside a window when the secret in use would otherwise come within "
        "this long of its expiry before the next window opens (the last moment a rotation may be left to). "
        "Built-in: 3d.",
        examples=["3d"],
    )
    retire_on: Literal["grace_period", "usage"] | None = Field(
        default=None,
        description="What must be true before a superseded secret is removed. grace_period: every sink has held "
        "its successor for grace_period. usage: that too, and Entra's sign-in activity report shows the new "
        "secret signing in after it was handed out and the old one no longer (needs the application permission "
        "AuditLog.Read.All; global cloud only). A consumer that never switches is reported (consumer.lagging) "
        "and its old secret kept until it expires; when the report cannot be read, grace_period applies. "
        "Built-in: grace_period.",
        examples=["usage"],
    )
    usage_lag: Duration | None = Field(
        default=None,
        description="With retire_on: usage, how late a sign-in may show in Entra's report (it lags by hours), and "
        "how long after the handout a consumer may still sign in with the old secret while it switches. "
        "Built-in: 6h.",
        examples=["6h"],
    )

    @model_validator(mode="after")
    def _one_renewal_rule(self) -> PolicyOverrides:
        if self.renew_before is not None and self.renew_before_ratio is not None:
            raise ValueError("give renew_before or renew_before_ratio, not both")
        return self


def merge_policy(*layers: PolicyOverrides) -> Policy:
    """The effective policy: built-in defaults, then each layer's keys that are set."""
    values: dict[str, Any] = {}
    for layer in layers:
        given = {k: getattr(layer, k) for k in PolicyOverrides.model_fields if getattr(layer, k) is not None}
        # The two ways of saying when to renew replace each other: a target's ratio beats a default duration.
        if "renew_before_ratio" in given:
            values.pop("renew_before", None)
        if "renew_before" in given:
            values.pop("renew_before_ratio", None)
        values.update(given)
    if "windows" in values:
        values["windows"] = tuple(w.window() for w in values["windows"])
    return Policy(**values)


def policy_problems(policy: Policy) -> list[str]:
    """What is wrong with an effective policy that each key alone cannot show (renew_before >= lifetime)."""
    problems = []
    if policy.lifetime < timedelta(minutes=2):
        problems.append("lifetime is shorter than 2m: no consumer could keep up; use days (90d)")
    if policy.renew_before is not None and policy.renew_before >= policy.lifetime:
        problems.append(
            f"renew_before ({format_duration(policy.renew_before)}) must be shorter than lifetime "
            f"({format_duration(policy.lifetime)}), else every pass would rotate"
        )
    if policy.grace_period >= policy.lifetime:
        problems.append("grace_period must be shorter than lifetime, else old secrets pile up to max_credentials")
    if policy.windows and policy.window_margin >= policy.lifetime:
        problems.append(
            f"window_margin ({format_duration(policy.window_margin)}) must be shorter than lifetime "
            f"({format_duration(policy.lifetime)}), else every pass would rotate outside the windows"
        )
    if policy.retire_on == "usage" and policy.usage_lag >= policy.lifetime:
        problems.append("usage_lag must be shorter than lifetime, else no evidence could ever arrive in time")
    if policy.verify_timeout <= timedelta(0):
        problems.append("verify_timeout must be positive")
    return problems
