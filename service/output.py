"""What `plan` and `status` print: a readable table, or JSON for scripts.

Both are built from gathered facts only (key ids, names, dates, sink ids): no secret value ever
reaches them, and the rendered text passes the redactor anyway. `status` alone shows each credential's
hint (Graph's first three characters of its secret, as the portal shows them), so that an operator can
match a secret they hold to its credential; `plan`, like the log, names credentials by key id only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from service import redact
from service.clock import iso
from service.errors import RemoteError, ServiceError
from service.model import Action, Plan, State
from service.reconcile import Outcome, TargetResult
from service.tables import table


def _error(error: ServiceError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    data: dict[str, Any] = {"reason": error.reason.value, "message": str(error), "hint": error.hint}
    if isinstance(error, RemoteError):
        data.update(service=error.service, status=error.status, code=error.code)
    return data


def _action(action: Action) -> dict[str, Any]:
    return {
        "kind": action.kind.value,
        "reason": action.reason.value,
        "message": action.message,
        "key_id": action.key_id,
        "sink": action.sink,
        "source": action.source,
        "after_rotation": action.after_rotation,
        "window_overridden": action.window_overridden,
        "waits_until": iso(action.waits_until),
    }


def plan_document(results: Sequence[TargetResult]) -> dict[str, Any]:
    """`plan --output json`: per target its status, what is in use, when it renews, the actions and notes."""
    targets = []
    for r in results:
        plan = r.plan
        status = (
            "error"
            if r.outcome is Outcome.FAILED
            else ("changes" if not plan or not plan.healthy else "waiting" if plan.waiting else "healthy")
        )
        targets.append(
            {
                "target": r.target,
                "status": status,
                "in_use": sorted(plan.in_use) if plan else [],
                "renew_at": iso(plan.renew_at) if plan else None,
                "actions": [_action(a) for a in plan.actions] if plan else [],
                "notes": list(plan.notes) if plan else [],
                "error": _error(r.error),
                **({"evidence": _evidence(plan)} if plan and plan.usage is not None else {}),
            }
        )
    return {"targets": targets}


def status_document(results: Sequence[TargetResult], now: datetime) -> dict[str, Any]:
    """Every target's credentials with what is becoming of each (the plan's standings), and its sinks.

    Each credential's hint (its secret's first 3 characters, as Graph and the portal show them) is here
    because it tells an operator which secret is which; `status` is where an operator looks for that.
    """
    targets = []
    for r in results:
        entry: dict[str, Any] = {
            "target": r.target,
            "status": "error" if r.outcome is Outcome.FAILED else "ok",
            "error": _error(r.error),
            "credentials": [],
            "sinks": [],
            "notes": [],
        }
        if r.app is not None and r.plan is not None:
            plan = r.plan
            standing = {s.key_id: s for s in plan.standings}
            entry["app"] = {"object_id": r.app.object_id, "app_id": r.app.app_id, "display_name": r.app.display_name}
            entry["renew_at"] = iso(plan.renew_at)
            for c in sorted(r.app.credentials, key=lambda c: (c.end is None, c.end or now)):
                said = standing.get(c.key_id)
                entry["credentials"].append(
                    {
                        "key_id": c.key_id,
                        "hint": c.hint,
                        "display_name": c.display_name,
                        "managed": c.managed(r.marker),
                        "start": iso(c.start),
                        "end": iso(c.end),
                        "expires_in_days": round((c.end - now).total_seconds() / 86400, 1) if c.end else None,
                        "expired": c.expired(now),
                        "held_by": [h.sink for h in plan.holdings if h.key_id == c.key_id],
                        "in_use": c.key_id in plan.in_use,
                        "state": said.state.value if said else None,
                        "pending": said.pending if said else False,
                        "renew_at": iso(said.renew_at) if said else None,
                        "retire_after": iso(said.retire_after) if said else None,
                        "retire_due": said.due if said else False,
                        "last_sign_in": iso(said.last_sign_in) if said else None,
                        "missing_evidence": said.missing if said else None,
                    }
                )
            entry["sinks"] = [
                {
                    "sink": h.sink,
                    "key_id": h.key_id,
                    "since": iso(h.since),
                    "pending": h.pending,
                    "readable": h.readable,
                    "known": h.known,
                }
                for h in plan.holdings
            ]
            # What waits for a maintenance window is no action of `status`, but an operator asks why.
            entry["notes"] = list(plan.notes) + ([plan.waiting.message] if plan.waiting is not None else [])
            if plan.usage is not None:
                entry["evidence"] = _evidence(plan)
        targets.append(entry)
    return {"targets": targets}


def _evidence(plan: Plan) -> dict[str, Any]:
    """retire_on: usage: whether the sign-in report gave evidence, and which consumers show no switch."""
    usage = plan.usage
    assert usage is not None
    return {
        "available": usage.available,
        "gap": usage.gap.value if usage.gap else None,
        "detail": usage.detail,
        "hint": usage.hint,
        "lagging": [
            {
                "key_id": lag.key_id,
                "in_use": list(lag.in_use),
                "handed_out": iso(lag.handed_out),
                "last_sign_in": {k: iso(v) for k, v in lag.last_sign_in.items()},
                "missing": lag.missing,
            }
            for lag in plan.lagging
        ],
    }


def render_json(document: dict[str, Any]) -> str:
    """A document as indented JSON, scrubbed."""
    return redact.scrub(json.dumps(document, indent=2))


def render_plan_table(document: dict[str, Any]) -> str:
    """`plan`'s document for a person: one block per target, its actions as a table, its notes."""
    lines: list[str] = []
    for t in document["targets"]:
        lines.append(f"{t['target']}: {t['status']}" + (f" (renews at {t['renew_at']})" if t["renew_at"] else ""))
        if t["error"]:
            lines.append(f"  error ({t['error']['reason']}): {t['error']['message']}")
            lines.append(f"  hint: {t['error']['hint']}")
        rows = [["", "ACTION", "REASON", "WHAT"]]
        rows += [
            ["", a["kind"] + (" (after)" if a["after_rotation"] else ""), a["reason"], a["message"]]
            for a in t["actions"]
        ]
        if len(rows) > 1:
            lines.extend(table(rows))
        lines.extend(f"  note: {note}" for note in t["notes"])
    return redact.scrub("\n".join(lines))


def _when(stamp: str | None) -> str:
    """An ISO time from a document, shorter for a table: ``2026-03-01 14:00Z``."""
    return f"{stamp[:10]} {stamp[11:16]}Z" if stamp else "-"


def _state(c: dict[str, Any]) -> str:
    """What is becoming of a credential, in words, from the plan's standing (no rule is applied here)."""
    state = c["state"]
    if state == State.IN_USE:
        return "in use, push unconfirmed" if c["pending"] else "in use"
    if state in (State.SUPERSEDED, State.ORPHAN):
        if c["retire_due"]:
            return f"{state}, retired by the next run"
        if c.get("missing_evidence"):
            # The target's note says which evidence; the date is the grace period's end or, for a consumer
            # that shows no switch, the secret's own end.
            return f"{state}, waits for evidence of the switch, at the latest {_when(c['retire_after'])}"
        if c["retire_after"]:
            return f"{state}, retire after {_when(c['retire_after'])}"
        return f"{state}, retire once every sink has held its successor for the grace period"
    return {
        State.FOREIGN: "another store's (foreign), kept",  # the target's note says until when
        State.MAY_BE_HELD: "kept: a sink without receipt may hold it",
        State.UNMANAGED: "unmanaged, left alone",
    }.get(state, str(state))


def render_status_table(document: dict[str, Any]) -> str:
    """`status`'s document for a person: one block per target, its credentials as a table, its sinks."""
    lines: list[str] = []
    failed = [t["target"] for t in document["targets"] if t["error"]]
    for t in document["targets"]:
        app = t.get("app")
        if t["error"]:
            # Stands out: upper case, and the same words as the closing line.
            lines.append(f"{t['target']}: FAILED, could not be read ({t['error']['reason']})")
            lines.append(f"  error: {t['error']['message']}")
            lines.append(f"  hint: {t['error']['hint']}")
            continue
        title = f"{t['target']}" + (f": app {app['display_name']} ({app['app_id']})" if app else "")
        lines.append(title + (f", renews at {_when(t['renew_at'])}" if t.get("renew_at") else ""))
        usage = "evidence" in t  # retire_on: usage: each credential's last sign-in, as the report shows it
        rows = [
            ["", "KEY ID", "HINT", "MANAGED", "STATE", "EXPIRES", "DAYS", "RENEW AT", "HELD BY"]
            + (["LAST SIGN-IN"] if usage else [])
        ]
        for c in t["credentials"]:
            days = c["expires_in_days"]
            rows.append(
                [
                    "",
                    c["key_id"],
                    c["hint"] or "-",
                    "yes" if c["managed"] else "no",
                    _state(c),
                    _when(c["end"]) if c["end"] else "never",
                    "expired" if c["expired"] else ("-" if days is None else f"{days:g}"),
                    _when(c["renew_at"]),
                    ", ".join(c["held_by"]) or "-",
                ]
                + ([_when(c["last_sign_in"])] if usage else [])
            )
        lines.extend(table(rows))
        for s in t["sinks"]:
            if not s["known"]:
                lines.append(f"  sink {s['sink']}: unknown (no receipt)")
                continue
            state = "pending" if s["pending"] else "held"
            lines.append(f"  sink {s['sink']}: {s['key_id'] or 'nothing known'} ({state} since {s['since'] or '-'})")
        lines.extend(f"  note: {note}" for note in t["notes"])
    if failed:
        lines.append(
            f"FAILED: {len(failed)} of {len(document['targets'])} target(s) could not be read: {', '.join(failed)}"
        )
    return redact.scrub("\n".join(lines))
