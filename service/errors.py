"""One error root, sorted at the edge.

Adapters translate SDK and HTTP failures into :class:`RemoteError` with a :class:`FailureReason` and
whether trying again may help (`transient`). Everything an operator sees as ``rotation.failed`` carries
one of the fixed reasons and a hint saying what to do. Messages never contain secret values.
"""

from __future__ import annotations

from typing import Any

from service.catalogue import FailureReason as FailureReason  # defined with every other word operators see

DEFAULT_HINTS: dict[FailureReason, str] = {
    FailureReason.PERMISSION_DENIED: (
        "grant the rotator Application.ReadWrite.OwnedBy and make it an owner of the app "
        "(or grant Application.ReadWrite.All); for Key Vault, assign Key Vault Secrets Officer"
    ),
    FailureReason.NOT_FOUND: "check tenant_id, client_id, vault_url and secret_name in the config",
    FailureReason.POLICY_VIOLATION: (
        "the tenant's app management policy refused the request: shorten `lifetime` or ask an admin to relax the policy"
    ),
    FailureReason.THROTTLED: "the service is throttling; the next pass retries, nothing to do unless it persists",
    FailureReason.VERIFICATION_FAILED: (
        "the new secret never authenticated within verify_timeout; it was removed and the old one kept. "
        "Check Entra sign-in logs for the app, or raise verify_timeout"
    ),
    FailureReason.SINK_FAILED: "a sink did not take the new secret; the next pass retries it",
    FailureReason.CONFIG_ERROR: "fix the configuration (`secret-rotator config check`)",
    FailureReason.UNEXPECTED: "a bug or an unknown failure: the log line's `error` says more",
}


class ServiceError(Exception):
    """Root of the service's errors: a reason code, a message, and a hint for the operator."""

    reason: FailureReason = FailureReason.UNEXPECTED
    transient: bool = False

    def __init__(
        self,
        message: str,
        *,
        reason: FailureReason | None = None,
        hint: str | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        if transient is not None:
            self.transient = transient
        self.hint = hint or DEFAULT_HINTS[self.reason]

    @property
    def message(self) -> str:
        """The message without the service and target prefix (:meth:`RemoteError.__str__` adds them)."""
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        # A worker process (run --workers) sends its targets' errors to the parent. The default pickling
        # calls the class with ``args`` alone, which the subclasses' keyword-only fields do not allow.
        return _rebuild, (type(self), self.args, self.__dict__)


def _rebuild(cls: type[ServiceError], args: tuple[Any, ...], state: dict[str, Any]) -> ServiceError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(ServiceError):
    """The configuration or the command line is wrong: exit 2, before any network call."""

    reason = FailureReason.CONFIG_ERROR


class RemoteError(ServiceError):
    """A remote service (Graph, Key Vault, Entra, a push endpoint) refused or failed a call.

    ``service`` names it (graph, keyvault, entra, push), ``target`` what was asked for (an app's client
    id, a vault secret, a URL), ``status`` the HTTP status if there was one and ``code`` the service's
    own error code (e.g. ``Authorization_RequestDenied``, ``SecretNotFound``, ``AADSTS7000215``).
    """

    def __init__(
        self,
        message: str,
        *,
        service: str,
        target: str,
        reason: FailureReason,
        transient: bool,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason, hint=hint, transient=transient)
        self.service = service
        self.target = target
        self.status = status
        self.code = code
        self.retry_after = retry_after

    def about(self, target: str) -> RemoteError:
        """The same failure, naming ``target`` (one of many things a single answer failed: apps in a batch)."""
        return type(self)(
            self.message,
            service=self.service,
            target=target,
            reason=self.reason,
            transient=self.transient,
            status=self.status,
            code=self.code,
            retry_after=self.retry_after,
            hint=self.hint,
        )

    def __str__(self) -> str:
        detail = ", ".join(
            part
            for part in (
                f"HTTP {self.status}" if self.status is not None else "",
                self.code or "",
            )
            if part
        )
        return f"{self.service} {self.target}: {self.message}" + (f" ({detail})" if detail else "")


class OutcomeUnknown(RemoteError):
    """A write may or may not have happened (the connection broke after the request was sent).

    For ``addPassword`` this is left to the orphan rule: a credential created but never recorded is
    removed by a later pass once ``in_flight_timeout`` has passed.
    """

    @classmethod
    def after(cls, error: RemoteError, hint: str) -> OutcomeUnknown:
        """``error`` (a 5xx, an answer too large to read) met by a write that may have happened anyway: not to
        be tried blindly again, and ``hint`` says how to find out."""
        return cls(
            error.message,
            service=error.service,
            target=error.target,
            reason=error.reason,
            transient=False,
            status=error.status,
            code=error.code,
            hint=hint,
        )


class VerificationFailed(ServiceError):
    """The new secret did not authenticate before ``verify_timeout``."""

    reason = FailureReason.VERIFICATION_FAILED


class StateCorrupt(ServiceError):
    """The state store holds a target's receipts (or intents) in a form that cannot be read (truncated,
    not JSON, edited by hand, too large, not a regular file).

    What they said is unknown: the push sinks of ``target`` may hold any of the app's credentials,
    exactly as if the receipts were lost (without intents, no credential no sink recorded is taken for
    this store's own). ``where`` names the document (a file, or a ConfigMap key); the store never
    overwrites it, so that a person can look at it.
    """

    reason = FailureReason.SINK_FAILED

    def __init__(self, target: str, where: str, problem: str, *, hint: str, what: str = "push receipts") -> None:
        super().__init__(f"the {what} of {target} in {where} cannot be read: {problem}", hint=hint)
        self.target = target
        self.where = where
