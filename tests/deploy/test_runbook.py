"""docs/runbook.md has a section for every `rotation.failed` reason, every alert and every blocked plan, each
saying what it means, how to confirm it and the fix; every alert rule's runbook_url leads to one of them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.catalogue import EvidenceGap
from service.config.reference import anchor
from service.errors import FailureReason
from service.model import Reason

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "runbook.md"
RUNBOOK_URL = "https://github.com/secret-rotator/secret-rotator/blob/main/docs/runbook.md#"
# What a blocked plan or a warning sends an operator to (plan's own words name the first one).
MORE_SECTIONS = (
    "push-never-confirmed-no-room",
    "statecorrupt",
    "competing_state_store-and-foreign_credential",
    "no_room_for_retry",
    "cap_reached",
    "httpconnections_full",
    "credentialexpiring",
    "consumerlagging",
    "evidenceunavailable",
)
BLOCKED = (Reason.CAP_REACHED, Reason.NO_ROOM_FOR_RETRY, Reason.COMPETING_STATE_STORE)


def sections() -> dict[str, str]:
    """Each heading's GitHub anchor and the text under it, up to the next heading."""
    found: dict[str, str] = {}
    current = None
    for line in RUNBOOK.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"#{1,6} (.*)", line)
        if heading:
            current = anchor(heading.group(1).replace("`", ""))
            assert current not in found, f"two headings give the anchor #{current}"
            found[current] = ""
        elif current is not None:
            found[current] += line + "\n"
    return found


def alert_rules() -> list[dict[str, Any]]:
    rules = []
    for path in sorted((ROOT / "deploy" / "overlays").glob("*/prometheusrule.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        rules += [rule for group in document["spec"]["groups"] for rule in group["rules"] if "alert" in rule]
    return rules


def test_there_are_alert_rules_to_check() -> None:
    assert len(alert_rules()) >= 6


@pytest.mark.parametrize("reason", list(FailureReason), ids=[r.value for r in FailureReason])
def test_every_rotation_failed_reason_has_a_section_that_says_what_how_to_confirm_and_the_fix(
    reason: FailureReason,
) -> None:
    text = sections().get(reason.value)

    assert text is not None, f"docs/runbook.md has no section ### `{reason.value}`"
    for part in ("**Means**", "**Confirm**", "**Fix**"):
        assert part in text


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: str(rule["alert"]))
def test_every_alert_has_a_section_and_a_runbook_url_that_leads_to_one(rule: dict[str, Any]) -> None:
    found = sections()
    text = found.get(anchor(rule["alert"]))
    url = rule["annotations"].get("runbook_url", "")

    assert text is not None, f"docs/runbook.md has no section ### {rule['alert']}"
    for part in ("**Means**", "**Confirm**", "**Fix**"):
        assert part in text
    assert url.startswith(RUNBOOK_URL)
    target = url.removeprefix(RUNBOOK_URL)
    # A rule with a reason label links to that reason's section: every reason must have one.
    targets = [target.replace("{{ $labels.reason }}", r.value) for r in FailureReason] if "{{" in target else [target]
    assert set(targets) <= set(found), f"{url} leads to no section of docs/runbook.md"


@pytest.mark.parametrize("name", MORE_SECTIONS)
def test_warnings_and_known_troubles_have_their_section(name: str) -> None:
    assert name in sections()


@pytest.mark.parametrize("reason", BLOCKED, ids=[r.value for r in BLOCKED])
def test_every_reason_a_plan_is_blocked_for_has_a_section_named_for_it(reason: Reason) -> None:
    named = [a for a in sections() if re.search(rf"(^|-){reason.value}(-|$)", a)]

    assert named, f"no section of docs/runbook.md is named for {reason.value}"


def test_the_runbook_s_own_links_lead_to_its_sections() -> None:
    links = set(re.findall(r"\]\(#([^)]+)\)", RUNBOOK.read_text(encoding="utf-8")))

    assert links
    assert links <= set(sections())


def test_every_place_the_code_sends_an_operator_to_the_runbook_names_a_section() -> None:
    # The planner's blocked messages quote a section's title: "see the runbook, 'push never confirmed, no room'".
    quoted = [
        title
        for path in (ROOT / "service").rglob("*.py")
        for title in re.findall(r"see the runbook, '([^']+)'", path.read_text(encoding="utf-8"))
    ]

    assert quoted
    assert {anchor(title) for title in quoted} <= set(sections())


@pytest.mark.parametrize("gap", list(EvidenceGap), ids=[g.value for g in EvidenceGap])
def test_every_reason_an_evidence_unavailable_event_gives_is_explained_in_its_section(gap: EvidenceGap) -> None:
    assert f"`{gap.value}`" in sections()["evidenceunavailable"]
