"""The `demo` command: the whole life of a client secret, against the built-in emulator, in half a minute.

The story: a Dime.Scheduler app whose hand-made secret is about to expire; an admin once pasted it
into Key Vault (untagged) and typed it into Dime.Scheduler's setup page. The real engine (``run_pass``,
the pass `run` and `daemon` make) adopts it, rotates it (create, verify through Entra's replication
delay, store in Key Vault, push to Dime.Scheduler, which signs in with it), and retires the old secret
only once the grace period is over and Entra's sign-in report shows Dime.Scheduler signing in with the
new one (``retire_on: usage``). Then a maintenance window is added to the config: the next renewal,
due outside it, waits for the window to open, and happens then. Policy durations are minutes instead of
days, and the report lags by seconds instead of hours. The engine uses the emulator's clock, so the
demo can fast-forward time.

Only key ids reach the screen; the engine's own log goes to a file in the working directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import yaml

from service import logs
from service.catalogue import Event
from service.config.document import Config
from service.config.loading import load_config
from service.demo_view import LogTail, Row, Screen, render_table, short, shorten_ids, span
from service.emulator import Clock, Emulator
from service.emulator.standalone import DIME_GRAPH_ROLES, DIME_REDIRECT_URI, ROTATOR_GRAPH_ROLES
from service.metrics import Metrics
from service.model import DEFAULT_MARKER
from service.reconcile import Outcome, TargetResult, VerifyBackoff
from service.runner import PassOptions, plan_pass, run_pass
from service.windows import DAY_NAMES

TARGET = "dime-scheduler"
SECRET_NAME = "dime-scheduler-client-secret"  # noqa: S105 - the name of a Key Vault secret, not its value
LIFETIME, RENEW_BEFORE, GRACE = timedelta(minutes=6), timedelta(minutes=2), timedelta(seconds=15)
# Entra's sign-in report shows a sign-in this late (hours in Entra); usage_lag allows for it.
REPORT_LAG = timedelta(seconds=30)
POLICY = {
    "lifetime": "6m",
    "renew_before": "2m",
    "grace_period": "15s",
    "verify_timeout": "1m",
    "in_flight_timeout": "30s",
    "retire_unmanaged": True,
    "retire_on": "usage",
    "usage_lag": "30s",
}
# The maintenance window added halfway: it opens soon after the second renewal is due, and the secret in use
# has more than window_margin left then, so the renewal waits for it.
WINDOW_MARGIN, WINDOW_LENGTH = timedelta(seconds=30), timedelta(minutes=30)  # window_margin: "30s" in add_window
REPLICATION_DELAY = timedelta(seconds=3)
HAND_MADE_LEFT = timedelta(seconds=100)  # inside renew_before: its renewal is due at once
# Token attempts close together, so verification ends soon after the replication delay does.
BACKOFF = VerifyBackoff(first=0.5, factor=1.5, longest=1.0)
TICK = 0.25  # seconds between redraws on a terminal


class Demo:
    """The demo's story against the emulator: seed a tenant, run passes, narrate the engine's log, show the table."""

    def __init__(self, emu: Emulator, workdir: Path, screen: Screen, *, fast: bool) -> None:
        self.emu = emu
        self.workdir = workdir
        self.screen = screen
        self.fast = fast
        self.tail = LogTail(workdir / "engine.log")
        self.status = ""
        self.known: dict[str, Row] = {}  # every credential ever seen, so that retired ones stay in the table
        self.events: list[dict[str, Any]] = []  # the engine's, all passes
        self.problems: list[str] = []
        self.passes = 0
        self.fast_forwarded = timedelta(0)
        self._last_line: str | None = None

    # --- the world ------------------------------------------------------------------------------

    def seed(self) -> Config:
        """A tenant with the rotator and the Dime.Scheduler app, whose hand-made secret is pasted into Key Vault
        (and taken for what Dime.Scheduler holds); the config that rotates it.
        """
        emu = self.emu
        self.tenant = emu.add_tenant()
        rotator = emu.add_rotator(self.tenant, roles=ROTATOR_GRAPH_ROLES)
        app = emu.add_app(self.tenant, "Dime.Scheduler", owners=[rotator.object_id], redirect_uris=[DIME_REDIRECT_URI])
        self.app_id = app.app_id
        sp = emu.directory.sp_by_app_id(emu.directory.require_tenant(self.tenant), app.app_id)
        assert sp is not None, "add_app creates the service principal"
        for role in DIME_GRAPH_ROLES:
            emu.grant_app_role(self.tenant, sp.object_id, role)
        now = emu.clock.now()
        end = now + HAND_MADE_LEFT
        self.hand_made, text = emu.add_password(self.tenant, app.app_id, start=end - timedelta(days=365), end=end)
        self.hand_version = self._paste_into_vault(text, end)
        # Dime.Scheduler has been signing in with it all along: the report's row for it is an hour old.
        emu.sign_ins.record(now - timedelta(hours=1), self.tenant, app.app_id, app.object_id, self.hand_made)
        emu.sign_ins.lag = REPORT_LAG
        emu.replication_delay = REPLICATION_DELAY

        rotator_secret = self._private("rotator-client-secret", rotator.secret)
        api_key = self._private("dimescheduler-api-key", emu.receiver.api_key)
        self.data: dict[str, Any] = {
            "cloud": {"authority_host": emu.url, "graph_url": emu.graph_url, "ca_bundle": str(emu.ca_file)},
            "credential": {
                "type": "client_secret",
                "tenant_id": self.tenant,
                "client_id": rotator.client_id,
                "client_secret": {"file": str(rotator_secret)},
            },
            "defaults": POLICY,
            "state": {"backend": "file", "path": str(self.workdir / "state")},
            "targets": [
                {
                    "name": TARGET,
                    "tenant_id": self.tenant,
                    "client_id": app.app_id,
                    "sinks": [
                        {
                            "type": "keyvault",
                            "vault_url": emu.vault_url,
                            "secret_name": SECRET_NAME,
                            "verify_challenge_resource": False,
                        },
                        {"type": "dimescheduler", "url": emu.receiver_url, "api_key": {"file": str(api_key)}},
                    ],
                }
            ],
        }
        return self._write_config()

    def _write_config(self) -> Config:
        path = self.workdir / "config.yaml"
        path.write_text(
            "# Written by `secret-rotator demo`; valid while its emulator runs.\n"
            + yaml.safe_dump(self.data, sort_keys=False),
            encoding="utf-8",
        )
        return load_config(path)

    def add_window(self, after: datetime) -> tuple[Config, datetime, str]:
        """The config with a maintenance window (UTC) that opens at the first whole minute 20s or more after
        ``after``; the config, when the window opens, and the window as the config writes it."""
        opens = (after + timedelta(seconds=80)).replace(second=0, microsecond=0)
        closes = opens + WINDOW_LENGTH
        window = {
            "days": [DAY_NAMES[opens.astimezone(UTC).weekday()]],
            "start": f"{opens:%H:%M}",
            "end": f"{closes:%H:%M}",
            "time_zone": "UTC",
        }
        self.data["defaults"] = {**POLICY, "windows": [window], "window_margin": "30s"}
        said = f"{window['days'][0]} {window['start']}-{window['end']} {window['time_zone']}"
        return self._write_config(), opens, said

    def _private(self, name: str, text: str) -> Path:
        path = self.workdir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path

    def _paste_into_vault(self, text: str, expires: datetime) -> str:
        """What an admin did before the rotator existed: the secret in Key Vault, without tags."""
        return self.emu.add_vault_secret(SECRET_NAME, text, expires=expires).version

    def vault_holds(self) -> tuple[str | None, str]:
        """The key id the Key Vault secret holds now (the hand-made one until tagged), and how to say it."""
        latest = self.emu.vault_secret(SECRET_NAME)
        if latest is None:
            return None, ""
        if latest.version == self.hand_version:
            return self.hand_made, "holds (untagged)"
        return latest.tags.get("key-id"), "holds"

    def dime_holds(self) -> tuple[str | None, str]:
        """The key id Dime.Scheduler holds now (the hand-made one until the first push), and how to say it."""
        deliveries = self.emu.receiver.deliveries
        if not deliveries:
            return self.hand_made, "holds (typed in)"
        return deliveries[-1].idempotency_key, "holds"

    def handed_out(self) -> set[str]:
        """Every key id a consumer was ever given."""
        tagged = {v.tags.get("key-id") for v in self.emu.vault_versions(SECRET_NAME)}
        pushed = {d.idempotency_key for d in self.emu.receiver.deliveries}
        return {k for k in tagged | pushed if k} | {self.hand_made}

    # --- the screen -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Redraw the table from what the emulator holds now (retired credentials stay, marked so)."""
        now = self.emu.clock.now()
        vault_key, vault_note = self.vault_holds()
        dime_key, dime_note = self.dime_holds()
        handed_out = self.handed_out()
        on_app = {p.key_id: p for p in self.emu.passwords(self.tenant, self.app_id)}
        report = self.emu.sign_ins.last_sign_ins(self.tenant, now)  # what Graph's report would answer now
        for key_id, p in on_app.items():
            held = key_id in (vault_key, dime_key)
            state = "in use" if held else ("superseded" if key_id in handed_out else "new, not handed out")
            name = p.display_name or ""
            seen = report.get(key_id.lower())
            self.known[key_id] = Row(
                key_id,
                name,
                name.startswith(DEFAULT_MARKER),
                p.end,
                vault_note if key_id == vault_key else "",
                dime_note if key_id == dime_key else "",
                state,
                seen.at if seen else None,
            )
        for key_id, row in self.known.items():
            if key_id not in on_app and row.end is not None:
                self.known[key_id] = Row(key_id, row.name, row.managed, None, "", "", "retired", row.signed_in)
        ahead = f" (fast-forwarded {span(self.fast_forwarded)})" if self.fast_forwarded else ""
        title = f"Dime.Scheduler app {self.app_id}, emulator clock {now:%H:%M:%S}Z{ahead}"
        self.screen.show([title, *render_table(list(self.known.values()), now)], self.status)

    def narrate(self) -> None:
        """Say, one line each, what the engine logged since the last call."""
        for event in self.tail.read():
            self.events.append(event)
            line = self._describe(event)
            if line and line != self._last_line:  # one line for a run of equal ones (refused token attempts)
                self.screen.say(f"    {line}")
            self._last_line = line or self._last_line

    def _describe(self, e: dict[str, Any]) -> str | None:
        name, key, reason = e.get("event"), short(e.get("key_id")), str(e.get("reason", "")).replace("_", " ")
        if name == Event.CREDENTIAL_CREATED:
            return f"created {key} ({reason}), valid for {span(LIFETIME)}"
        if name == Event.CREDENTIAL_VERIFIED:
            return (
                f"verified {key}: Entra gave it a token on attempt {e.get('attempts')}, after {e.get('seconds')}s "
                f"(the replication delay is {span(REPLICATION_DELAY)})"
            )
        if name == Event.SINK_UPDATED and str(e.get("sink", "")).startswith("keyvault:"):
            return f"stored {key} in Key Vault: a new version tagged key-id={key}..."
        if name == Event.SINK_UPDATED:
            last = self.emu.receiver.deliveries[-1] if self.emu.receiver.deliveries else None
            signed_in = "and it signed in with it" if last and last.signin_ok else "but it could NOT sign in with it"
            return f"pushed {key} to Dime.Scheduler (Idempotency-Key {key}...), {signed_in}"
        if name == Event.CREDENTIAL_RETIRED:
            switched = (
                ": the grace period is over and the sign-in report shows the switch"
                if ("shows the switch" in str(e.get("detail", "")))
                else ""
            )
            return f"retired {key} ({reason}){switched}"
        if name == Event.ROTATION_DEFERRED:
            # "waiting for window, opens at <when>: <what waits>": the words `plan` prints too.
            waiting, _, what = shorten_ids(str(e.get("detail", ""))).partition(": ")
            return f"{waiting}; what waits: {what} (`plan` says the same)"
        if name == Event.CONSUMER_LAGGING:
            return f"kept {key} (consumer.lagging, a warning): {shorten_ids(str(e.get('missing', '')))}"
        if name == Event.TARGET_HEALTHY:
            renew_at = e.get("renew_at")
            if isinstance(renew_at, str) and datetime.fromisoformat(renew_at) <= self.emu.clock.now():
                return None  # due, and deferred: the line before says so
            return "healthy: nothing to do" + self._until(renew_at, "; renewal due in")
        if name == Event.ROTATION_FAILED:
            return f"FAILED ({reason}): {e.get('error')}"
        if "AADSTS7000215" in str(name):
            # azure-identity's warning for a token attempt with a secret Entra has not replicated yet.
            return "Entra refused the new secret (AADSTS7000215: not replicated yet); trying again"
        if e.get("level") in ("warning", "error", "critical") and "target" in e:
            return f"{e.get('level')}: {name} {e.get('error', '')}".rstrip()
        return None

    def _until(self, iso: Any, prefix: str) -> str:
        if not isinstance(iso, str):
            return ""
        return f"{prefix} {span(datetime.fromisoformat(iso) - self.emu.clock.now())}"

    def expect(self, condition: bool, problem: str) -> None:
        """Note a problem when ``condition`` is false; the demo ends by listing them."""
        if not condition:
            self.problems.append(problem)
            self.screen.say(f"    unexpected: {problem}")

    # --- steps ------------------------------------------------------------------------------------

    async def run_pass(self, config: Config, why: str) -> TargetResult:
        """One pass of the real engine, with a status line while it runs and its log narrated."""
        self.passes += 1
        number = self.passes
        self.screen.say(f"pass {number}: {why}")
        began = time.monotonic()
        task = asyncio.ensure_future(
            run_pass(config, clock=self.emu.clock, metrics=Metrics(), options=PassOptions(backoff=BACKOFF))
        )
        while True:
            done, _ = await asyncio.wait({task}, timeout=TICK)
            self.narrate()
            self.status = "" if done else f"pass {number} running, {time.monotonic() - began:.1f}s"
            self.refresh()
            if done:
                break
        [result] = task.result()
        self.screen.say(f"    pass {number} took {time.monotonic() - began:.1f}s: {result.outcome.value}")
        self.screen.snapshot()
        self.expect(result.outcome is not Outcome.FAILED, f"pass {number} failed")
        return result

    async def preview(self, config: Config) -> None:
        """What `secret-rotator plan` would say before the first pass: read-only."""
        [result] = await plan_pass(config, clock=self.emu.clock, metrics=Metrics(), only=config.targets[0].name)
        self.narrate()
        if result.plan is None:
            self.expect(False, f"the plan could not be made: {result.error}")
            return
        self.screen.say("plan (read-only, what `secret-rotator plan` prints):")
        for holding in result.plan.holdings:
            where = "Key Vault" if holding.sink.startswith("keyvault:") else "Dime.Scheduler"
            if holding.key_id == self.hand_made and holding.readable:
                self.screen.say(
                    f"    {where} holds {short(holding.key_id)}: its secret has no key-id tag, but its "
                    "hint and end date match the hand-made credential, so it is adopted (no forced "
                    "rotation)"
                )
            elif holding.key_id is None:
                self.screen.say(
                    f"    {where}: no push receipt yet, so nothing the rotator can name (the secret "
                    "was typed in by hand)"
                )
            else:
                self.screen.say(f"    {where} holds {short(holding.key_id)}")
        for action in result.plan.actions:
            self.screen.say(f"    -> {action.kind.value} ({action.reason.value.replace('_', ' ')})")
        self.expect(
            any(h.key_id == self.hand_made for h in result.plan.holdings),
            "Key Vault's hand-made secret was not adopted",
        )

    async def wait_until(self, when: datetime, why: str) -> None:
        """Wait for the emulator's clock to reach ``when`` (with --fast: move the clock there)."""
        left = when - self.emu.clock.now()
        if left <= timedelta(0):
            return
        if self.fast:
            self.fast_forward(left, why)
            return
        self.screen.say(f"waiting {span(left)} for {why} (--fast moves the clock instead)")
        while (left := when - self.emu.clock.now()) > timedelta(0):
            self.status = f"waiting for {why}: {span(left)} left"
            self.refresh()
            await asyncio.sleep(min(TICK, left.total_seconds()))
        self.status = ""
        self.refresh()

    def fast_forward(self, delta: timedelta, why: str) -> None:
        """Move the emulator's clock, which the engine shares, by ``delta``, and say why."""
        self.emu.clock.advance(delta)
        self.fast_forwarded += delta
        self.screen.say(f"fast-forward the emulator's clock by {span(delta)}: {why} (the engine shares this clock)")
        self.refresh()

    def dime_signs_in(self) -> None:
        """Dime.Scheduler signs in with the secret it holds, as it does all day; Entra's report shows it later."""
        key = short(self.dime_holds()[0])
        ok = self.emu.receiver.sign_in_with_latest()
        self.screen.say(
            f"Dime.Scheduler signs in with {key}, the secret it holds (it does so all day); Entra's "
            f"report will show it {span(REPORT_LAG)} from now"
        )
        self.expect(ok, f"Dime.Scheduler could not sign in with {key}")

    def grace_ends(self) -> datetime:
        """When every sink has held its current secret for the grace period."""
        latest = self.emu.vault_secret(SECRET_NAME)
        deliveries = self.emu.receiver.deliveries
        since = max([*([latest.created] if latest else []), *(d.received_at for d in deliveries[-1:])])
        return since + GRACE + timedelta(seconds=1)

    def created(self, after: int = 0) -> list[dict[str, Any]]:
        """The ``credential.created`` events logged after the first ``after`` events."""
        return [e for e in self.events[after:] if e.get("event") == Event.CREDENTIAL_CREATED]

    def retired(self, key_id: str) -> dict[str, Any] | None:
        """The ``credential.retired`` event of ``key_id``, if it was retired."""
        return next(
            (e for e in self.events if e.get("event") == Event.CREDENTIAL_RETIRED and e.get("key_id") == key_id), None
        )

    # --- the story --------------------------------------------------------------------------------

    async def play(self) -> list[str]:
        """Run the story; returns the summary's lines."""
        config = self.seed()
        say = self.screen.say
        say(f"Emulator on {self.emu.url}: Entra ID, Microsoft Graph, Key Vault and a Dime.Scheduler endpoint.")
        say(
            f"The Dime.Scheduler app has a hand-made secret {short(self.hand_made)} that expires in "
            f"{span(HAND_MADE_LEFT)}; an admin pasted it into Key Vault (no tags) and typed it into Dime.Scheduler, "
            "which signs in with it."
        )
        say(
            f"Policy in minutes instead of days: lifetime {span(LIFETIME)}, renew {span(RENEW_BEFORE)} before expiry, "
            f"grace period {span(GRACE)}; Entra replicates a new secret in {span(REPLICATION_DELAY)}."
        )
        say(
            f"retire_on: usage: an old secret goes only once Entra's sign-in report (LAST SIGN-IN below) shows "
            f"Dime.Scheduler signing in with the new one; the report lags {span(REPORT_LAG)} here, hours in Entra."
        )
        self.refresh()
        self.screen.snapshot()
        await self.preview(config)

        mark = len(self.events)
        await self.run_pass(config, "the hand-made secret is due for renewal")
        made = [str(e["key_id"]) for e in self.created(mark)]
        first = made[0] if made else None
        self.expect(len(made) == 1, f"pass 1 created {len(made)} secrets, not one")
        self.expect(
            self.vault_holds()[0] == first and self.dime_holds()[0] == first,
            "Key Vault and Dime.Scheduler do not both hold the new secret",
        )
        pushed_ok = bool(self.emu.receiver.deliveries) and self.emu.receiver.deliveries[-1].signin_ok is True
        self.expect(pushed_ok, "Dime.Scheduler could not sign in with the pushed secret")

        await self.wait_until(self.grace_ends(), "the grace period")
        await self.run_pass(config, "the grace period is over; does the report show Dime.Scheduler switched?")
        self.expect(
            self.retired(self.hand_made) is None, "the hand-made secret was retired before the report showed the switch"
        )
        self.dime_signs_in()
        self.fast_forward(REPORT_LAG + timedelta(seconds=1), "the report catches up with that sign-in")
        await self.run_pass(config, f"the report shows Dime.Scheduler signing in with {short(first)}")
        retired = self.retired(self.hand_made)
        self.expect(
            retired is not None and "shows the switch" in str(retired.get("detail")),
            "the hand-made secret was not retired on the report's evidence",
        )

        credential = next((p for p in self.emu.passwords(self.tenant, self.app_id) if p.key_id == first), None)
        second = None
        opens = None
        if credential is not None:
            renew_at = credential.end - RENEW_BEFORE + timedelta(seconds=1)
            config, opens, window = self.add_window(renew_at)
            say(
                f"The team now wants changes made in a maintenance window only: the config gets windows: "
                f"{window} (window_margin {span(WINDOW_MARGIN)}: a secret that would come closer than that to its "
                "expiry before the window opens is rotated at once)."
            )
            self.fast_forward(renew_at - self.emu.clock.now(), f"to {span(RENEW_BEFORE)} before {short(first)} expires")
            mark = len(self.events)
            await self.run_pass(config, f"{short(first)} is due for renewal, but the window is closed")
            self.expect(not self.created(mark), "the renewal did not wait for the maintenance window")
            self.expect(
                any(e.get("event") == Event.ROTATION_DEFERRED for e in self.events[mark:]),
                "no rotation.deferred for the closed window",
            )
            self.fast_forward(opens - self.emu.clock.now(), "to when the maintenance window opens")
            mark = len(self.events)
            await self.run_pass(config, "the maintenance window is open")
            made = [str(e["key_id"]) for e in self.created(mark)]
            second = made[0] if made else None
            self.expect(len(made) == 1, f"the second renewal created {len(made)} secrets, not one")
            self.fast_forward(self.grace_ends() - self.emu.clock.now(), "past the grace period")
            self.dime_signs_in()
            self.fast_forward(REPORT_LAG + timedelta(seconds=1), "the report catches up with that sign-in")
            await self.run_pass(config, f"the grace period is over and the report shows the switch to {short(second)}")
            self.expect(self.retired(str(first)) is not None, f"{short(first)} was not retired")

        remaining = [p.key_id for p in self.emu.passwords(self.tenant, self.app_id)]
        self.expect(second is not None and remaining == [second], f"the app ends with {len(remaining)} secret(s)")
        self.expect(
            self.vault_holds()[0] == second and self.dime_holds()[0] == second,
            "the consumers do not hold the last secret",
        )
        return self._summary(first, second, remaining, opens)

    def _summary(
        self, first: str | None, second: str | None, remaining: list[str], opens: datetime | None
    ) -> list[str]:
        verified = [e for e in self.events if e.get("event") == Event.CREDENTIAL_VERIFIED]
        proof = f" (token on attempt {verified[0].get('attempts')}, {verified[0].get('seconds')}s)" if verified else ""
        window = f" at {opens:%H:%M}Z" if opens else ""
        return [
            f"adopted the hand-made secret {short(self.hand_made)} found untagged in Key Vault, without a forced "
            "rotation",
            f"rotated it before it expired: created {short(first)}, verified it through Entra's "
            f"{span(REPLICATION_DELAY)} replication delay{proof}, stored it in Key Vault and pushed it to "
            "Dime.Scheduler, which signed in with it",
            f"retired the hand-made secret {short(self.hand_made)} only once the {span(GRACE)} grace period was over "
            f"and Entra's sign-in report showed Dime.Scheduler signing in with {short(first)} (not before: pass 2 "
            "kept it, the report did not show the switch yet)",
            f"deferred the next renewal, due {span(RENEW_BEFORE)} before {short(first)} expired, to the maintenance "
            f"window: pass 4 waited, pass 5 renewed when the window opened{window}, creating {short(second)}; "
            f"{short(first)} was retired once the report showed the switch",
            f"now: {len(remaining)} secret on the app ({', '.join(short(k) for k in remaining)}), held by Key Vault "
            "and Dime.Scheduler; no secret value was shown",
        ]


# --- the command ---------------------------------------------------------------------------------


async def run_demo(out: TextIO, *, fast: bool = False, keep: bool = False, live: bool | None = None) -> int:
    """`secret-rotator demo`: the whole lifecycle against a fresh emulator; 0 when it went as planned."""
    began = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="secret-rotator-demo-"))
    screen = Screen(out, live=live)
    summary: list[str] = []
    problems: list[str] = []
    demo: Demo | None = None
    try:
        with (workdir / "engine.log").open("w", encoding="utf-8") as log_file:
            logs.configure(log_file, json=True, level="info")
            logging.captureWarnings(True)  # a library's warning belongs in the log, not across the table
            async with Emulator(clock=Clock(), state_dir=workdir / "emulator") as emu:
                demo = Demo(emu, workdir, screen, fast=fast)
                try:
                    summary = await demo.play()
                finally:
                    problems = demo.problems
                    screen.close()
    except Exception as error:  # noqa: BLE001 - told to the user with the log's path, instead of a traceback
        problems.append(f"{type(error).__name__}: {error}")
        screen.close()
    except BaseException:  # Ctrl-C: nothing to report and nothing worth keeping
        screen.close()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    finally:
        logging.captureWarnings(False)
        logs.configure(sys.stderr, level="warning")
    seconds = time.monotonic() - began
    forwarded = f"; emulator clock fast-forwarded {span(demo.fast_forwarded)}" if demo and demo.fast_forwarded else ""
    screen.gap()
    if problems:
        screen.say(f"The demo did not go as planned ({seconds:.1f}s wall time):")
        for problem in problems:
            screen.say(f"  - {problem}")
    else:
        screen.say(f"Summary ({seconds:.1f}s wall time{forwarded}):")
        for line in summary:
            screen.say(f"  - {line}")
    if keep or problems:
        screen.say(f"Config, state, emulator CA and the engine's log (JSON lines): {workdir}")
        screen.say(f"    engine log: {workdir / 'engine.log'}")
    else:
        with contextlib.suppress(OSError):
            shutil.rmtree(workdir)
        screen.say("(--keep keeps the config, state and the engine's log)")
    return 1 if problems else 0


def command(args: argparse.Namespace) -> int:
    """`secret-rotator demo` (its arguments are registered in service/cli.py)."""
    return asyncio.run(run_demo(sys.stdout, fast=args.fast, keep=args.keep))
