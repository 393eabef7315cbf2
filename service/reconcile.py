"""gather -> plan -> apply, for every target of a pass.

``gather`` only reads, ``policy.plan`` only decides, ``apply`` is the only code that writes. One
target's failure never stops another: each ends as healthy, changed or failed, and a failed one logs
exactly one ``rotation.failed`` with a reason and a hint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from service import logs, policy
from service.bulk_reads import BulkApps
from service.catalogue import Event
from service.clock import iso
from service.durations import format_duration
from service.errors import FailureReason, OutcomeUnknown, RemoteError, ServiceError, StateCorrupt, VerificationFailed
from service.metrics import Metrics
from service.model import (
    DEFAULT_MARKER,
    NO_FLAGS,
    Action,
    App,
    Credential,
    Flags,
    Holding,
    Intent,
    Kind,
    Plan,
    Policy,
    Reason,
    Usage,
    credential_name,
)
from service.ports import Clock, Directory, SignInReport, Sink, StateStore, Verifier
from service.secret import Secret
from service.usage import read_usage


@dataclass
class TargetContext:
    """One target with the adapters of this pass (built by service.wiring)."""

    name: str
    tenant_id: str
    client_id: str
    policy: Policy
    directory: Directory
    verifier: Verifier
    sinks: Sequence[Sink]
    sign_ins: SignInReport | None = None  # Entra's sign-in activity report, for ``retire_on: usage``

    @property
    def pushes(self) -> bool:
        """Some sink cannot be read back: the state store's receipts and intents matter to this target."""
        return any(not s.readable for s in self.sinks)


@dataclass
class Gathered:
    """What one target's gather read: the app, each sink's holding, this store's intents for the target, and
    the state documents that could not be read (their holdings and intents count as unknown)."""

    app: App
    holdings: list[Holding]
    intents: tuple[Intent, ...] = ()
    corrupt: list[StateCorrupt] = field(default_factory=list)
    usage: Usage | None = None  # Entra's sign-in report (retire_on: usage only)


class Outcome(StrEnum):
    """How one target's pass ended."""

    HEALTHY = "healthy"  # nothing to do
    CHANGED = "changed"  # rotated, re-synced or retired, and all went well
    FAILED = "failed"


@dataclass
class TargetResult:
    """One target's pass: how it ended, what it planned and did, the app as gathered, the error if it failed."""

    target: str
    outcome: Outcome
    plan: Plan | None = None
    app: App | None = None
    error: ServiceError | None = None
    done: list[Action] = field(default_factory=list)
    created: Credential | None = None  # the credential apply created and delivered to every sink
    marker: str = DEFAULT_MARKER  # the target's display-name marker: which credentials are managed


async def _nothing() -> None:
    return None


def count_outcomes(results: Sequence[TargetResult]) -> dict[str, int]:
    """How many targets ended each way, every outcome named (``{"healthy": 3, "changed": 1, "failed": 0}``)."""
    return {outcome.value: sum(r.outcome is outcome for r in results) for outcome in Outcome}


_BLOCKED_HINTS = {
    Reason.CAP_REACHED: "remove an unused secret of the app, or raise max_credentials",
    Reason.NO_ROOM_FOR_RETRY: (
        "raise max_credentials by one, or remove an unmanaged secret of the app that no consumer uses: a target "
        "whose sinks cannot be read back keeps one slot free for repairing a push that is never confirmed"
    ),
    Reason.COMPETING_STATE_STORE: (
        "run the rotators of a target with one shared state store (one state.path volume, or one state "
        "ConfigMap), or stop all but one; after a one-off run from another host there is nothing to do: this "
        "store answers again once its own last answer is older than the grace period"
    ),
}


@dataclass(frozen=True)
class VerifyBackoff:
    """Waits between token attempts with a new secret, while Entra replicates it."""

    first: float = 1.0
    factor: float = 1.5
    longest: float = 15.0


class Engine:
    """gather -> plan -> apply for each target of a pass, on the adapters of its :class:`TargetContext`."""

    def __init__(
        self,
        clock: Clock,
        store: StateStore,
        metrics: Metrics,
        *,
        backoff: VerifyBackoff = VerifyBackoff(),
    ) -> None:
        self._clock = clock
        self._store = store
        self._metrics = metrics
        self._backoff = backoff

    # --- gather and plan (read-only) -------------------------------------------------------------

    async def gather(
        self, ctx: TargetContext, *, app: App | None = None, history: bool = True, usage: bool = True
    ) -> Gathered:
        """Read the app (unless given: read in bulk), what each sink holds, (for a target with a push sink) this
        store's intents and (with ``retire_on: usage``, unless ``usage`` is False) Entra's sign-in report.
        ``history=False``: the sinks may say only what they hold now (Sink.read).

        A state document that cannot be read is no failure: it is reported in ``corrupt``, and what it
        would have said counts as unknown (a push sink holding anything, no credential this store's own).
        """
        if app is None:
            app = await ctx.directory.read_app(ctx.client_id)
        corrupt: list[StateCorrupt] = []
        intents: tuple[Intent, ...] = ()
        if ctx.pushes:
            try:
                intents = await self._store.intents(ctx.name)
            except StateCorrupt as error:
                corrupt.append(error)
        holdings, report = await asyncio.gather(
            asyncio.gather(*(self._read(sink, app, corrupt, history) for sink in ctx.sinks)),
            self._usage(ctx) if usage else _nothing(),
        )
        return Gathered(app, list(holdings), intents, corrupt, report)

    async def _usage(self, ctx: TargetContext) -> Usage | None:
        """Entra's sign-in report for a ``retire_on: usage`` target (read beside the sinks), else None."""
        if not ctx.policy.on_usage or ctx.sign_ins is None:
            return None
        return await read_usage(ctx.sign_ins, ctx.client_id)

    async def _glance(self, ctx: TargetContext, apps: BulkApps, flags: Flags) -> Gathered:
        """The target as the pass's bulk reads show it: its app from its tenant's batch, its sinks from what
        they hold now, and the whole of their history only if the plan depends on it."""
        app = await apps.app(ctx.directory, ctx.client_id)
        facts = await self.gather(ctx, app=app, history=False)
        if not facts.corrupt and policy.needs_history(app.credentials, facts.holdings, ctx.policy, flags):
            # The sign-in report, if any, as already read: it says the same whatever the sinks recorded.
            facts = replace(await self.gather(ctx, app=app, usage=False), usage=facts.usage)
        return facts

    async def _read(self, sink: Sink, app: App, corrupt: list[StateCorrupt], history: bool = True) -> Holding:
        try:
            return await sink.read(app, history=history)
        except StateCorrupt as error:
            # One document holds all of a target's receipts: each of its push sinks meets the same error.
            if all(seen.where != error.where for seen in corrupt):
                corrupt.append(error)
            return Holding(sink.id, None, None, readable=sink.readable, known=False)

    def _plan(self, ctx: TargetContext, facts: Gathered, flags: Flags, *, setting_aside: bool) -> Plan:
        now = self._clock.now()
        app, holdings = facts.app, facts.holdings
        actions = policy.plan(now, app.credentials, holdings, ctx.policy, flags, facts.intents, facts.usage)
        in_use = frozenset(policy.in_use(app.credentials, holdings))
        current = _current(app, in_use)
        renew_at = policy.renewal_time(current, ctx.policy) if current else None
        then = "this run moves it aside" if setting_aside else "the next `run` moves it aside"
        notes = tuple(
            [f"{error}: planned as if it were lost; {then} (kept for a look)" for error in facts.corrupt]
            + policy.notes(now, app.credentials, holdings, ctx.policy, facts.intents, facts.usage)
        )
        claims = policy.claims(app.credentials, facts.intents)
        standings = tuple(policy.standings(now, app.credentials, holdings, ctx.policy, facts.intents, facts.usage))
        lagging = tuple(
            policy.lagging_consumers(
                policy.Facts.of(now, app.credentials, holdings, ctx.policy, flags, facts.intents, facts.usage)
            )
        )
        return Plan(
            ctx.name, tuple(actions), in_use, renew_at, tuple(holdings), notes, claims, standings, facts.usage, lagging
        )

    def _warn_corrupt(self, facts: Gathered, log: Any) -> None:
        for error in facts.corrupt:
            log.warning(Event.STATE_CORRUPT, where=error.where, error=str(error), hint=error.hint)

    async def plan_target(
        self, ctx: TargetContext, flags: Flags = NO_FLAGS, apps: BulkApps | None = None
    ) -> TargetResult:
        """What a pass would do, without writing anything (the `plan` and `status` commands); ``apps``: the
        pass's bulk reads of the apps, if it has them."""
        try:
            facts = await (self._glance(ctx, apps, flags) if apps is not None else self.gather(ctx))
        except ServiceError as error:
            return TargetResult(ctx.name, Outcome.FAILED, error=error, marker=ctx.policy.marker)
        self._warn_corrupt(facts, logs.get_logger(target=ctx.name))
        plan = self._plan(ctx, facts, flags, setting_aside=False)
        outcome = Outcome.HEALTHY if plan.healthy else Outcome.CHANGED
        return TargetResult(ctx.name, outcome, plan, facts.app, marker=ctx.policy.marker)

    # --- one target ------------------------------------------------------------------------------

    async def reconcile_target(
        self, ctx: TargetContext, flags: Flags = NO_FLAGS, *, usage: Usage | None = None
    ) -> TargetResult:
        """One target's pass under the store's lock: gather, plan, record claims, apply; report how it ended.
        ``usage``: Entra's sign-in report as this pass already read it for the target (None: read it now).

        Never raises: a failure (a bug included) ends as a FAILED result with one ``rotation.failed``.
        """
        log = logs.get_logger(target=ctx.name)
        result = TargetResult(ctx.name, Outcome.FAILED, marker=ctx.policy.marker)
        try:
            async with self._store.lock(ctx.name):
                facts = await self.gather(ctx, usage=usage is None)
                if usage is not None:
                    facts = replace(facts, usage=usage)
                app = result.app = facts.app
                self._warn_corrupt(facts, log)
                result.plan = self._plan(ctx, facts, flags, setting_aside=bool(facts.corrupt))
                self._report_evidence(ctx, result.plan, log)
                if facts.corrupt:
                    # Before anything is written: the store never overwrites what it cannot read. What the
                    # documents said stays unknown to the plan; the first push writes a fresh receipt.
                    aside = await self._store.set_aside(ctx.name, self._clock.now())
                    log.info(Event.STATE_SET_ASIDE, where=[e.where for e in facts.corrupt], aside=aside)
                for intent in result.plan.claims:
                    # Before the plan acts on it (an orphan's retirement): see policy.claims.
                    await self._store.add_intent(ctx.name, intent)
                if result.plan.waiting is not None:
                    _log_wait(result.plan.waiting, log)
                if result.plan.healthy:
                    result.outcome = Outcome.HEALTHY
                    self._log_healthy(app, result.plan, log)
                else:
                    await self._apply(ctx, app, result, log)
                    result.outcome = Outcome.CHANGED
        except ServiceError as error:
            result.error = error
        except Exception as error:  # one target's bug must not stop the others
            log.exception(Event.TARGET_CRASHED)
            result.error = ServiceError(f"{type(error).__name__} while reconciling", reason=FailureReason.UNEXPECTED)
        await self._report_credentials(ctx, result)
        self._report(ctx, result, log)
        return result

    async def _check_healthy(
        self, ctx: TargetContext, apps: BulkApps, flags: Flags
    ) -> tuple[TargetResult | None, Usage | None]:
        """A target's pass from the pass's bulk reads, without its lock, when nothing is to be done: healthy
        (or failed, when it cannot be read, as the locked pass would fail). None when anything is to be done,
        a lost answer to record or state to set aside: then reconcile_target reads it again, fresh, under the
        target's lock, so that two passes at once still converge and a crash leaves what it always left; with
        the sign-in report read here, which it need not read again."""
        log = logs.get_logger(target=ctx.name)
        result = TargetResult(ctx.name, Outcome.FAILED, marker=ctx.policy.marker)
        try:
            facts = await self._glance(ctx, apps, flags)
            plan = None if facts.corrupt else self._plan(ctx, facts, flags, setting_aside=False)
        except ServiceError as error:
            result.error = error
        except Exception:  # noqa: BLE001  # a bug: the locked pass meets it again, and reports it as it does
            return None, None
        else:
            if plan is None or not plan.healthy or plan.claims:
                return None, facts.usage
            result.outcome, result.plan, result.app = Outcome.HEALTHY, plan, facts.app
            self._report_evidence(ctx, plan, log)
            if plan.waiting is not None:
                _log_wait(plan.waiting, log)
            self._log_healthy(facts.app, plan, log)
        await self._report_credentials(ctx, result)
        self._report(ctx, result, log)
        return result, None

    def _log_healthy(self, app: App, plan: Plan, log: Any) -> None:
        current = _current(app, plan.in_use)
        log.info(Event.TARGET_HEALTHY, key_id=current.key_id if current else None, renew_at=iso(plan.renew_at))

    async def _report_credentials(self, ctx: TargetContext, result: TargetResult) -> None:
        """The expiry gauges as the pass left the app: as gathered and changed by apply when it did all it planned
        (:func:`_after_apply`), else read again."""
        app, plan = result.app, result.plan
        if app is None or plan is None:
            return
        credentials, in_use = app.credentials, set(plan.in_use)
        if not plan.healthy:
            applied = _after_apply(result)
            if applied is not None:
                credentials, in_use = applied
            else:
                # apply added or removed credentials and changed what the sinks hold, and did not get through
                # all of it: without a second read the gauges (and the expiry alerts) would describe the app as
                # it was, until the next pass.
                try:
                    after = await self.gather(ctx, usage=False)  # the gauges need no sign-in report
                except ServiceError:
                    pass  # keep the gathered picture; the next pass corrects it
                else:
                    credentials = after.app.credentials
                    in_use = policy.in_use(after.app.credentials, after.holdings)
        self._metrics.credentials(ctx.name, credentials, in_use, ctx.policy.marker)

    def _report_evidence(self, ctx: TargetContext, plan: Plan, log: Any) -> None:
        """With ``retire_on: usage``: a report that gave no evidence, once a pass, and each consumer that shows
        no switch (its superseded secret is kept); both as metrics too."""
        now = self._clock.now()
        usage = plan.evidence_gap
        if usage is not None and usage.gap is not None:
            log.warning(
                Event.EVIDENCE_UNAVAILABLE,
                reason=usage.gap.value,
                detail=usage.detail,
                hint=usage.hint,
                fallback="grace_period",
            )
        for lag in plan.lagging:
            log.warning(
                Event.CONSUMER_LAGGING,
                key_id=lag.key_id,
                in_use=list(lag.in_use),
                handed_out=iso(lag.handed_out),
                days_since_handout=round((now - lag.handed_out) / timedelta(days=1), 1),
                last_sign_in={k: iso(v) for k, v in lag.last_sign_in.items()},
                missing=lag.missing,
                hint="the consumer still signs in with the old secret or not with the new one: see docs/runbook.md",
            )
        if ctx.policy.on_usage:
            self._metrics.evidence(ctx.name, now, plan.lagging, usage.gap if usage is not None else None)

    def _report(self, ctx: TargetContext, result: TargetResult, log: Any) -> None:
        now = self._clock.now()
        app = result.app
        if result.error is None:
            self._metrics.succeeded(ctx.name, now)
            return
        error = result.error
        self._metrics.failures.labels(ctx.name, error.reason.value).inc()
        fields: dict[str, Any] = {"reason": error.reason.value, "hint": error.hint, "error": str(error)}
        if isinstance(error, RemoteError):
            fields.update(service=error.service, status=error.status, code=error.code)
        log.error(Event.ROTATION_FAILED, **fields)
        plan = result.plan
        if app is not None and plan is not None and plan.renew_at is not None and plan.renew_at <= now:
            current = _current(app, plan.in_use)
            if current is not None and current.end is not None:
                log.warning(
                    Event.CREDENTIAL_EXPIRING,
                    key_id=current.key_id,
                    expires_at=iso(current.end),
                    expires_in=format_duration(current.end - now) if current.end > now else "expired",
                )

    # --- apply (the only code that writes) -------------------------------------------------------

    async def _apply(self, ctx: TargetContext, app: App, result: TargetResult, log: Any) -> None:
        """Take the plan's actions in its order (service.policy.plan says why that order is safe).

        A retirement marked ``after_rotation`` runs only once this pass's rotation has reached every sink;
        a failed retirement before the creation means there is no room for it, so nothing is created.
        """
        assert result.plan is not None
        errors: list[ServiceError] = []
        rotated = False
        for action in result.plan.actions:
            if action.after_rotation and not rotated:
                continue  # the new secret is not in every sink: a later pass plans this again
            if action.kind is Kind.CREATE and errors:
                break  # a retirement that was to make room failed: creating now would exceed the cap
            if action.kind is Kind.WAIT:
                continue  # said before the plan was applied (_log_wait)
            if action.window_overridden:
                log.warning(
                    Event.ROTATION_WINDOW_OVERRIDDEN, reason=action.reason.value, detail=action.window_overridden
                )
            try:
                if action.kind is Kind.BLOCKED:
                    raise ServiceError(
                        action.message, reason=FailureReason.POLICY_VIOLATION, hint=_BLOCKED_HINTS.get(action.reason)
                    )
                if action.kind is Kind.RETIRE:
                    await self._retire(ctx, app, action, log)
                elif action.kind is Kind.RESYNC:
                    await self._resync(ctx, app, action, log)
                elif action.kind is Kind.CREATE:
                    result.created = await self._rotate(ctx, app, action, log)
                    rotated = True
                result.done.append(action)
            except ServiceError as error:
                errors.append(error)
                if action.kind in (Kind.CREATE, Kind.BLOCKED):
                    break
        if errors:
            raise errors[0]

    async def _retire(self, ctx: TargetContext, app: App, action: Action, log: Any) -> None:
        assert action.key_id is not None
        await ctx.directory.remove_password(app.object_id, action.key_id)
        log.info(Event.CREDENTIAL_RETIRED, key_id=action.key_id, reason=action.reason.value, detail=action.message)

    async def _resync(self, ctx: TargetContext, app: App, action: Action, log: Any) -> None:
        assert action.key_id is not None
        credential = app.credential(action.key_id)
        source = next(s for s in ctx.sinks if s.id == action.source)
        sink = next(s for s in ctx.sinks if s.id == action.sink)
        assert credential is not None
        secret = await source.read_secret(action.key_id)
        await sink.write(credential, secret, action.supersedes)
        log.info(
            Event.SINK_UPDATED, sink=sink.id, key_id=credential.key_id, reason=action.reason.value, source=source.id
        )

    async def _rotate(self, ctx: TargetContext, app: App, action: Action, log: Any) -> Credential:
        """Create, verify, deliver to every sink (readable ones first); the new credential, once every sink has it."""
        credential, secret = await self._create(ctx, app, log, action.reason, action.message)
        try:
            attempts, seconds = await self._verify(ctx, credential, secret)
        except VerificationFailed:
            await self._compensate(ctx, app, credential, log, "verification failed")
            raise
        log.info(Event.CREDENTIAL_VERIFIED, key_id=credential.key_id, attempts=attempts, seconds=round(seconds, 2))

        failures: list[ServiceError] = []
        delivered = 0
        # Readable sinks first: once Key Vault holds the secret, a push that fails can be re-synced from it.
        for sink in sorted(ctx.sinks, key=lambda s: not s.readable):
            try:
                await sink.write(credential, secret, action.supersedes)
            except ServiceError as error:
                failures.append(error)
                log.warning(
                    Event.SINK_FAILED,
                    sink=sink.id,
                    key_id=credential.key_id,
                    error=str(error),
                    outcome_unknown=isinstance(error, OutcomeUnknown),
                )
                continue
            delivered += 1
            log.info(Event.SINK_UPDATED, sink=sink.id, key_id=credential.key_id, reason=action.reason.value)
        if delivered:
            self._metrics.rotations.labels(ctx.name, action.reason.value).inc()
        if not failures:
            return credential
        first = failures[0]
        if not delivered and not any(isinstance(f, OutcomeUnknown) for f in failures):
            # No consumer has it for sure: take it back now instead of leaving it to the orphan rule.
            await self._compensate(ctx, app, credential, log, "no sink took it")
        raise ServiceError(
            f"{len(failures)} of {len(ctx.sinks)} sink(s) did not take the new secret: {first}",
            reason=FailureReason.SINK_FAILED if first.reason is not FailureReason.PERMISSION_DENIED else first.reason,
            hint=first.hint,
        )

    async def _create(
        self, ctx: TargetContext, app: App, log: Any, reason: Reason, why: str
    ) -> tuple[Credential, Secret]:
        now = self._clock.now()
        name = credential_name(ctx.policy.marker, now)
        intent = Intent(name, now, reason.value)
        if ctx.pushes:
            # Durable before addPassword, like a pending receipt before a push: if its answer is lost, a later
            # pass knows the credential for this store's own (an orphan), not another store's that a push
            # sink may hold. A Key-Vault-only target needs none: Key Vault's tags say what was handed out.
            await self._store.add_intent(ctx.name, intent)
        try:
            credential, secret = await self._add_password(ctx, app, name, now, log)
        except RemoteError as error:
            if ctx.pushes and not isinstance(error, OutcomeUnknown):
                # Nothing was created: the name must never claim a credential another store names alike.
                await self._settle(ctx, replace(intent, refused=True), log)
            raise
        if ctx.pushes:
            # Its key id, so that a credential another store names alike within the same second is never
            # taken for this one (a lost answer leaves only the name to go by).
            await self._settle(ctx, replace(intent, key_id=credential.key_id), log)
        log.info(
            Event.CREDENTIAL_CREATED,
            key_id=credential.key_id,
            reason=reason.value,
            detail=why,
            expires_at=iso(credential.end),
            display_name=credential.display_name,
        )
        return credential, secret

    async def _settle(self, ctx: TargetContext, intent: Intent, log: Any) -> None:
        """Record how an intent ended. Not worth failing the rotation for: the push writes its receipt next
        (and if the store cannot take that either, the new secret is taken back), and an intent left
        without its outcome is still this store's, by its name, until another store names one alike."""
        try:
            await self._store.add_intent(ctx.name, intent)
        except ServiceError as error:
            log.warning(Event.STATE_INTENT_UNSETTLED, name=intent.name, key_id=intent.key_id, error=str(error))

    async def _add_password(
        self, ctx: TargetContext, app: App, name: str, now: datetime, log: Any
    ) -> tuple[Credential, Secret]:
        """``addPassword``, once more with a shorter lifetime if the tenant's policy refuses the configured one."""
        end = now + ctx.policy.lifetime
        try:
            return await ctx.directory.add_password(app.object_id, name, end)
        except RemoteError as error:
            if error.reason is not FailureReason.POLICY_VIOLATION:
                raise
            limit = await ctx.directory.password_lifetime_limit(app.object_id)
            if limit is None or now + limit >= end:
                error.hint = (
                    "the tenant's app management policy refused a lifetime of "
                    f"{format_duration(ctx.policy.lifetime)}: set `lifetime` within the policy, or grant the "
                    "rotator Policy.Read.All so it can cap the lifetime itself"
                )
                raise
            end = now + policy.lifetime_under(limit)
            log.warning(
                Event.CREDENTIAL_LIFETIME_CAPPED,
                requested=format_duration(ctx.policy.lifetime),
                allowed=format_duration(limit),
            )
            return await ctx.directory.add_password(app.object_id, name, end)

    async def _verify(self, ctx: TargetContext, credential: Credential, secret: Secret) -> tuple[int, float]:
        """Token requests with the new secret until one succeeds or ``verify_timeout`` runs out."""
        started = self._clock.monotonic()
        deadline = started + ctx.policy.verify_timeout.total_seconds()
        delay = self._backoff.first
        attempts = 0
        while True:
            attempts += 1
            try:
                await ctx.verifier.try_token(ctx.tenant_id, ctx.client_id, secret)
                return attempts, self._clock.monotonic() - started
            except RemoteError as error:
                if not error.transient or self._clock.monotonic() + delay > deadline:
                    raise VerificationFailed(
                        f"the new secret {credential.key_id} did not get a token after {attempts} attempt(s) "
                        f"in {self._clock.monotonic() - started:.0f}s: {error.message}"
                    ) from None
            await asyncio.sleep(delay)
            delay = min(delay * self._backoff.factor, self._backoff.longest)

    async def _compensate(self, ctx: TargetContext, app: App, credential: Credential, log: Any, why: str) -> None:
        try:
            await ctx.directory.remove_password(app.object_id, credential.key_id)
        except ServiceError as error:
            # Left to the orphan rule: a managed credential no sink recorded goes after in_flight_timeout.
            log.warning(Event.CREDENTIAL_COMPENSATION_FAILED, key_id=credential.key_id, error=str(error))
            return
        log.info(Event.CREDENTIAL_RETIRED, key_id=credential.key_id, reason=Reason.COMPENSATION.value, detail=why)

    # --- a pass over many targets ----------------------------------------------------------------

    async def run(
        self, contexts: Sequence[TargetContext], flags: Flags = NO_FLAGS, *, per_tenant: int = 4
    ) -> list[TargetResult]:
        """Reconcile every target, concurrently: first from the pass's bulk reads (each tenant's apps in
        Graph batches, each vault listed once), which settle every healthy target; each of the others is
        then reconciled under its lock, at most ``per_tenant`` at a time in one tenant."""
        limits: dict[str, asyncio.Semaphore] = {}
        apps = BulkApps((ctx.directory, ctx.client_id) for ctx in contexts)

        async def one(ctx: TargetContext) -> TargetResult:
            settled, usage = await self._check_healthy(ctx, apps, flags)
            if settled is not None:
                return settled
            limit = limits.setdefault(ctx.tenant_id, asyncio.Semaphore(per_tenant))
            async with limit:
                return await self.reconcile_target(ctx, flags, usage=usage)

        try:
            return list(await asyncio.gather(*(one(ctx) for ctx in contexts)))
        finally:
            await apps.close()

    async def plan_all(self, contexts: Sequence[TargetContext], flags: Flags = NO_FLAGS) -> list[TargetResult]:
        """:meth:`plan_target` for every target, from the pass's bulk reads."""
        apps = BulkApps((ctx.directory, ctx.client_id) for ctx in contexts)
        try:
            return list(await asyncio.gather(*(self.plan_target(ctx, flags, apps) for ctx in contexts)))
        finally:
            await apps.close()


def _log_wait(action: Action, log: Any) -> None:
    """``rotation.deferred``: what waits for the next maintenance window, and when it opens."""
    log.info(
        Event.ROTATION_DEFERRED, reason=action.reason.value, opens_at=iso(action.waits_until), detail=action.message
    )


def _after_apply(result: TargetResult) -> tuple[tuple[Credential, ...], set[str]] | None:
    """The app's credentials and the ones in use once apply did everything it planned, without reading them
    again: as gathered, less what it retired, plus what it created (then the one every sink holds). None when
    anything failed or a sink was re-sent: then only a second read tells."""
    app, plan = result.app, result.plan
    if app is None or plan is None or result.error is not None:
        return None
    if any(action.kind is Kind.RESYNC for action in result.done):
        return None
    retired = {action.key_id for action in result.done if action.kind is Kind.RETIRE}
    credentials = tuple(c for c in app.credentials if c.key_id not in retired)
    if result.created is None:
        return credentials, set(plan.in_use) - retired
    return (*credentials, result.created), {result.created.key_id}


def _current(app: App, in_use: frozenset[str]) -> Credential | None:
    return policy.newest(c for c in app.credentials if c.key_id in in_use)
