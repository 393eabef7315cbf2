"""The policy keys (in `defaults` and on a target), and how the layers merge into one Policy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, model_validator

from service.config.fields import Duration, StrictModel
from service.durations import format_duration
from service.model import Policy


class PolicyOverrides(StrictModel):
    """Policy keys; in `defaults` and, to override them, on a target."""

    lifetime: Duration | None = None
    renew_before: Duration | None = None
    renew_before_ratio: float | None = Field(default=None, gt=0, lt=1)
    grace_period: Duration | None = None
    verify_timeout: Duration | None = None
    in_flight_timeout: Duration | None = None
    max_credentials: int | None = Field(default=None, ge=2, le=100)
    retire_unmanaged: bool | None = None
    marker: str | None = Field(default=None, min_length=3, max_length=60)

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
    if policy.verify_timeout <= timedelta(0):
        problems.append("verify_timeout must be positive")
    return problems
