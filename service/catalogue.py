"""Every word the service says to an operator's tools: log event names, plan reasons, failure reasons.

They reach log queries, alert rules, metric labels and scripts reading `plan --output json`, so they are
kept in one place: the code logs only an :class:`Event` (a test checks that no log call names its event
any other way), and README's table of log events lists :data:`CONTRACT_EVENTS`, the stable names of
DESIGN.md ("Logs, metrics, alerts") and the state events an operator acts on.
:class:`service.model.Reason` and :class:`service.errors.FailureReason` are these enums, under the names
the rest of the code has always imported them by.
"""

from __future__ import annotations

from enum import StrEnum


class Event(StrEnum):
    """The ``event`` of every log line the service writes (the emulator's own lines aside)."""

    # A pass (run.* and target.*, credential.*, sink.*, rotation.failed: DESIGN.md's stable names)
    RUN_STARTED = "run.started"
    RUN_FINISHED = "run.finished"
    TARGET_HEALTHY = "target.healthy"
    TARGET_CRASHED = "target.crashed"  # a bug in one target's pass; it ends as rotation.failed (unexpected)
    CREDENTIAL_CREATED = "credential.created"
    CREDENTIAL_VERIFIED = "credential.verified"
    CREDENTIAL_RETIRED = "credential.retired"
    CREDENTIAL_EXPIRING = "credential.expiring"
    CREDENTIAL_LIFETIME_CAPPED = "credential.lifetime_capped"  # the tenant's policy shortened the lifetime
    CREDENTIAL_COMPENSATION_FAILED = "credential.compensation_failed"  # a secret no one has could not be removed
    SINK_UPDATED = "sink.updated"
    SINK_FAILED = "sink.failed"  # one sink refused the new secret (the others still get it)
    # retire_on: usage (Entra's sign-in activity report)
    CONSUMER_LAGGING = "consumer.lagging"  # a superseded secret is kept: no evidence its consumer switched
    EVIDENCE_UNAVAILABLE = "evidence.unavailable"  # the report cannot be read: the grace period alone decides
    ROTATION_FAILED = "rotation.failed"
    ROTATION_DEFERRED = "rotation.deferred"  # a creation or retirement waits for the next maintenance window
    ROTATION_WINDOW_OVERRIDDEN = "rotation.window_overridden"  # rotated outside the windows: expiry comes first
    # Notifications to people (notify:)
    NOTIFY_SENT = "notify.sent"  # a webhook took a message (kind, channel, host)
    NOTIFY_FAILED = "notify.failed"  # a webhook could not be told; the pass is not failed for it
    # Worker processes of a pass (run --workers, the daemon's passes)
    WORKER_STARTED = "worker.started"
    WORKER_FINISHED = "worker.finished"
    WORKER_FAILED = "worker.failed"  # a worker died or could not report: its targets end as rotation.failed
    WORKER_CRASHED = "worker.crashed"  # a bug in a worker outside any target's pass
    # The state store
    STATE_CORRUPT = "state.corrupt"
    STATE_SET_ASIDE = "state.set_aside"
    STATE_INTENT_UNSETTLED = "state.intent_unsettled"
    # The daemon and its probe server
    DAEMON_STARTED = "daemon.started"
    DAEMON_STOPPING = "daemon.stopping"
    DAEMON_STOPPED = "daemon.stopped"
    DAEMON_PASS_FAILED = "daemon.pass_failed"  # noqa: S105 - an event name, not a password
    DAEMON_FAILED = "daemon.failed"
    DAEMON_WINDOW_WAKE = "daemon.window_wake"  # the next pass moved forward to a maintenance window's opening
    HTTP_CONNECTIONS_FULL = "http.connections_full"
    HTTP_FAILED = "http.failed"
    HTTP_BAD_REQUEST = "http.bad_request"
    # bootstrap
    BOOTSTRAP_STEP = "bootstrap.step"
    BOOTSTRAP_FINISHED = "bootstrap.finished"


# What README's table of log events documents: DESIGN.md's stable names and the state events.
CONTRACT_EVENTS = frozenset(
    {
        Event.RUN_STARTED,
        Event.RUN_FINISHED,
        Event.TARGET_HEALTHY,
        Event.CREDENTIAL_CREATED,
        Event.CREDENTIAL_VERIFIED,
        Event.SINK_UPDATED,
        Event.CREDENTIAL_RETIRED,
        Event.CREDENTIAL_EXPIRING,
        Event.ROTATION_FAILED,
        Event.STATE_CORRUPT,
        Event.STATE_SET_ASIDE,
        Event.CONSUMER_LAGGING,
        Event.EVIDENCE_UNAVAILABLE,
    }
)


class Reason(StrEnum):
    """Why an action is planned (or taken); the same word reaches the log event, the metric and `plan` output."""

    # create
    NO_CREDENTIAL_IN_USE = "no_credential_in_use"
    NO_RECEIPT = "no_receipt"  # a push sink's holding is unknown: it may hold any of the app's secrets
    RENEWAL_DUE = "renewal_due"
    FORCED = "forced"
    REVOKE_PREVIOUS = "revoke_previous"
    SINK_LAGS_UNREADABLE = "sink_lags_unreadable"
    PENDING_UNCONFIRMED = "pending_unconfirmed"
    # create or resync: a credential another host or state store created may be what a push sink holds
    FOREIGN_CREDENTIAL = "foreign_credential"
    # resync
    SINK_LAGS = "sink_lags"
    PENDING_RESYNC = "pending_resync"
    # retire
    ORPHAN = "orphan"
    SUPERSEDED = "superseded"
    # retire_on: usage: the sign-in report never showed the switch, and the secret has expired: it works for no one
    SUPERSEDED_EXPIRED = "superseded_expired"
    REVOKED = "revoked"
    # retire, never planned: apply takes back a new secret that never worked or that no sink took
    COMPENSATION = "compensation"
    # blocked
    CAP_REACHED = "cap_reached"
    NO_ROOM_FOR_RETRY = "no_room_for_retry"  # a push-only target must keep a slot for re-sending by rotation
    COMPETING_STATE_STORE = "competing_state_store"  # another state store answered this one's answer: no ping-pong
    # wait
    OUTSIDE_WINDOW = "outside_window"  # creations and retirements wait for the next maintenance window


class FailureReason(StrEnum):
    """The fixed set of `reason` values of a ``rotation.failed`` event and its metric label."""

    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    POLICY_VIOLATION = "policy_violation"
    THROTTLED = "throttled"
    VERIFICATION_FAILED = "verification_failed"
    SINK_FAILED = "sink_failed"
    CONFIG_ERROR = "config_error"
    UNEXPECTED = "unexpected"


class EvidenceGap(StrEnum):
    """Why Entra's sign-in activity report gave no evidence for ``retire_on: usage`` (the ``reason`` of an
    ``evidence.unavailable`` event); the grace period alone decides meanwhile."""

    NO_PERMISSION = "no_permission"  # 401/403: the rotator lacks AuditLog.Read.All
    NOT_IN_THIS_CLOUD = "not_in_this_cloud"  # 400/404: the (beta, global-only) report is not there
    NO_DATA = "no_data"  # the report answered no row for the app
    UNREADABLE = "unreadable"  # anything else: throttled, 5xx, network; the next pass tries again
