"""Entra's sign-in report for one target, as the planner takes it (``retire_on: usage``).

:func:`read_usage` never fails the pass: a report that cannot be read, or has no data for the app, becomes a
:class:`service.model.Usage` with an :class:`~service.catalogue.EvidenceGap`, a detail and the fix, and the
grace period alone decides (service/policy/evidence.py).
"""

from __future__ import annotations

from service.catalogue import EvidenceGap
from service.errors import FailureReason, RemoteError
from service.model import Usage
from service.ports import SignInReport

FIXES: dict[EvidenceGap, str] = {
    EvidenceGap.NO_PERMISSION: (
        "grant the rotator the Microsoft Graph application permission AuditLog.Read.All (admin consent), or set "
        "retire_on: grace_period"
    ),
    EvidenceGap.NOT_IN_THIS_CLOUD: (
        "the sign-in activity report (Graph beta) exists in the global cloud only: set retire_on: grace_period "
        "for this target"
    ),
    EvidenceGap.NO_DATA: (
        "nothing to do while the app has not signed in with a secret lately; if it persists, look at the app "
        "in the Entra admin center (Usage & insights, application activity)"
    ),
    EvidenceGap.UNREADABLE: "the next pass reads the report again; nothing to do unless it persists",
}


def gap_of(error: RemoteError) -> EvidenceGap:
    """Why a report that failed with ``error`` gives no evidence."""
    if error.reason is FailureReason.PERMISSION_DENIED or error.status in (401, 403):
        return EvidenceGap.NO_PERMISSION
    if error.status in (400, 404):
        return EvidenceGap.NOT_IN_THIS_CLOUD
    return EvidenceGap.UNREADABLE


async def read_usage(report: SignInReport, client_id: str) -> Usage:
    """The app's last sign-in per credential, or why there is no evidence (never raises a RemoteError)."""
    try:
        last = await report.last_sign_ins(client_id)
    except RemoteError as error:
        gap = gap_of(error)
        status = f"{error.status} " if error.status else ""
        return Usage(
            gap=gap, detail=f"the sign-in activity report answered {status}{error.message}".strip(), hint=FIXES[gap]
        )
    if not last:
        return Usage(
            gap=EvidenceGap.NO_DATA,
            detail="the sign-in activity report has no sign-in of the app",
            hint=FIXES[EvidenceGap.NO_DATA],
        )
    return Usage(last_sign_in=last)
