"""`secret-rotator demo`: the README's first command finishes, tells the whole story, and shows no secret."""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

from service.demo import run_demo
from service.demo_view import Screen
from tests.conftest import assert_no_secrets

# The shape of an Entra client secret (and so of every secret the emulator generates): 40 characters
# with a format marker such as "8Q~" at the 4th to 6th.
ENTRA_SECRET = re.compile(r"[A-Za-z0-9_.~-]{3}\dQ~[A-Za-z0-9_.~-]{34}")


def assert_the_story_is_told(output: str) -> None:
    summary = output[output.index("Summary (") :]
    assert "adopted the hand-made secret" in summary
    assert "rotated it before it expired" in summary
    assert "pushed it to Dime.Scheduler, which signed in with it" in summary
    assert "retired the hand-made secret" in summary
    assert "deferred the next renewal" in summary
    assert "now: 1 secret on the app" in summary
    assert re.search(r"verified [0-9a-f]{8}: Entra gave it a token on attempt \d+", output)
    assert "did not go as planned" not in output
    assert_the_switch_is_observed_and_a_window_waited_for(output[: output.index("Summary (")])


def assert_the_switch_is_observed_and_a_window_waited_for(story: str) -> None:
    """The narration, in order: an old secret outlives the grace period until Dime.Scheduler's sign-in with the
    new one shows in the report; the next renewal waits for the maintenance window, then happens."""
    found = re.search(r"hand-made secret ([0-9a-f]{8}) that expires", story)
    assert found, "the hand-made secret is named"
    hand_made = found.group(1)
    first, second = re.findall(r"created ([0-9a-f]{8}) \(renewal due\)", story)
    switched = "(superseded): the grace period is over and the sign-in report shows the switch"
    for old, new in ((hand_made, first), (first, second)):
        signs_in = story.index(f"Dime.Scheduler signs in with {new}, the secret it holds")
        assert story.index(f"created {new}") < signs_in < story.index(f"retired {old} {switched}")
        assert story.count(f"retired {old} ") == 1
    assert story.index(f"kept {hand_made} (consumer.lagging") < story.index(f"Dime.Scheduler signs in with {first}")
    [deferral] = [line for line in story.splitlines() if "waiting for window, opens at " in line]
    assert f"create (renewal_due): {first} was due for renewal" in deferral
    assert story.index(f"retired {hand_made} ") < story.index(deferral) < story.index(f"created {second}")
    assert story.index("the maintenance window is open") < story.index(f"created {second}")


@pytest.mark.slow
async def test_the_demo_command_runs_the_whole_lifecycle_in_under_two_minutes_and_exits_0() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SECRET_ROTATOR_CONFIG"}
    began = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "demo",
        "--keep",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    workdir: Path | None = None
    try:
        async with asyncio.timeout(120):
            stdout, stderr = await process.communicate()
        seconds = time.monotonic() - began
        output = stdout.decode()
        found = re.search(r"engine log: (\S+)engine\.log", output)
        workdir = Path(found.group(1)) if found else None

        assert process.returncode == 0, stderr.decode()[-2000:]
        assert seconds < 120
        assert_the_story_is_told(output)
        assert "\x1b[" not in output  # not a terminal: snapshots, no redrawing
        assert output.count("KEY ID") >= 7  # the table after the set-up and after each of the six passes
        everything = output + stderr.decode()
        assert not ENTRA_SECRET.search(everything), "a secret-shaped string appears in the demo's output"
        assert workdir is not None
        for name in ("rotator-client-secret", "dimescheduler-api-key"):
            assert (workdir / name).read_text().strip() not in everything, name
        assert_no_secrets(everything, "the demo's output")
        assert not ENTRA_SECRET.search((workdir / "engine.log").read_text()), "a secret in the engine's log"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        if workdir is not None and workdir.name.startswith("secret-rotator-demo-"):
            shutil.rmtree(workdir, ignore_errors=True)


async def test_the_demo_redraws_in_place_on_a_terminal_and_shows_none_of_the_secrets_it_issued() -> None:
    out = io.StringIO()

    code = await run_demo(out, fast=True, live=True)

    output = out.getvalue()
    assert code == 0, output[-3000:]
    assert_the_story_is_told(output)
    assert "\x1b[" in output  # the table is redrawn in place
    assert "fast-forward the emulator's clock" in output
    assert "(--keep keeps" in output
    # The emulator ran in this process: the canary knows every secret it issued.
    assert_no_secrets(output, "the demo's output")


def test_a_snapshot_is_printed_once_per_step_where_nothing_can_be_redrawn() -> None:
    out = io.StringIO()
    screen = Screen(out, live=False)

    screen.show(["a table"], "a status line")
    screen.say("narration")
    screen.snapshot()
    screen.close()

    assert out.getvalue() == "narration\n    a table\n\n"
