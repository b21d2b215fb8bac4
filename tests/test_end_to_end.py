"""End to end, as an office runs it: `chronic dev up` and the CLI, each its own OS process.

`dev up` starts the embedded Postgres, the Temporal dev server, the migrations, the seed and
the five worker processes on free ports in a temporary state folder; the clerk and the experts
use `chronic submit / status / expert …` subprocesses. The accept window is shortened to
seconds through CHRONIC_POLICY_WINDOWS, the same knob an operator has — no code changes — set
for the submitting process: the policy a workflow runs by is the one its submission carried.
The stack is the session's shared one (tests/fixtures/dev_stack.py); how it stops (`dev down`,
the same handler as Ctrl-C) is tests/test_supervisor.py's last test.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

from tests import support
from tests.fixtures.dev_stack import SharedStack, Stack

pytestmark = pytest.mark.e2e

# Long enough for a status poll and an accept (CLI processes of 1–3 s each on a busy 2-core
# machine) to answer in time; the test waits one whole window for the lapse.
ACCEPT_WINDOW_SECONDS = 15


@pytest.fixture
async def stack(shared_stack: SharedStack) -> Stack:
    return await shared_stack.get()


async def test_declined_lapsed_accepted_two_stages_one_approval_sms(
    stack: Stack, tmp_path: Path
) -> None:
    table = json.loads((stack.state / "dev.json").read_text())
    workers = {name: e["pid"] for name, e in table.items() if name.startswith("worker ")}
    assert len(workers) == 5 and len(set(workers.values())) == 5

    form = support.form(support.WANG, "CHD")
    (tmp_path / "application.json").write_text(form.model_dump_json(), encoding="utf-8")
    windows = json.dumps({"accept_window": f"PT{ACCEPT_WINDOW_SECONDS}S"})
    submitted = await stack.chronic(
        "submit", str(tmp_path / "application.json"), env={"CHRONIC_POLICY_WINDOWS": windows}
    )
    application_id = submitted.stdout.strip().splitlines()[-1]
    assert application_id.startswith("APP-")

    first = await stack.wait_for(application_id, 1)
    await stack.chronic("expert", "decline", application_id, "--expert", first, "--reason", "出差")
    second = await stack.wait_for(application_id, 2)  # …and nobody answers: it lapses
    third = await stack.wait_for(application_id, 3, within_seconds=ACCEPT_WINDOW_SECONDS + 30)
    assert len({first, second, third}) == 3
    await stack.chronic("expert", "accept", application_id, "--expert", third)
    await stack.chronic(
        "expert", "decide", application_id, "--expert", third, "--approve", "--opinion", "符合"
    )
    reviewer = await stack.wait_for(application_id, 4)
    assert reviewer != third
    await stack.chronic("expert", "accept", application_id, "--expert", reviewer)
    await stack.chronic(
        "expert", "decide", application_id, "--expert", reviewer, "--approve", "--opinion", "同意"
    )

    for _ in range(60):
        progress = await stack.progress(application_id)
        if progress.finished_at is not None:
            break
        await asyncio.sleep(0.5)
    assert progress.status == "approved"
    assert [o.status for o in progress.offers] == [
        "declined",
        "lapsed",
        "completed",
        "completed",
    ]
    assert [(d.stage, d.expert) for d in progress.decisions] == [
        ("initial_review", third),
        ("re_review", reviewer),
    ]
    connection = await asyncpg.connect(
        f"postgresql://postgres@127.0.0.1:{stack.postgres_port}/chronic"
    )
    try:
        approvals = await connection.fetch(
            "select status from sms_outbox where application_id = $1 and template = 'approved'",
            application_id,
        )
    finally:
        await connection.close()
    assert [r["status"] for r in approvals] == ["sent"]

    # The product's metrics, on each worker's Prometheus endpoint.
    review = await stack.metrics("review")
    assert any('status="approved"' in line for line in review), review
    assignment = await stack.metrics("assignment")
    assert any('outcome="lapsed"' in line for line in assignment), assignment
    notification = await stack.metrics("notification")
    assert any('status="sent"' in line and "approved" in line for line in notification)

    # An operator finds it in the Temporal UI, filtered by a search attribute.
    await find_in_ui(stack, application_id)


CHROMIUM = shutil.which("chromium")  # Debian's package, installed by `make test`
ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"


async def find_in_ui(stack: Stack, application_id: str) -> None:
    """Headless Chromium opens the workflow list filtered by ChronicStatus and finds the app."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get)")
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    query = urllib.parse.quote(f'ChronicStatus="approved" AND WorkflowId="{application_id}"')
    url = f"http://localhost:{stack.ui_port}/namespaces/default/workflows?query={query}"
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            for _ in range(10):  # visibility is eventually consistent: reload until listed
                await page.goto(url)
                try:
                    await page.get_by_text(application_id).first.wait_for(timeout=5000)
                    break
                except PlaywrightTimeout:
                    continue
            await page.get_by_text(application_id).first.wait_for(timeout=5000)
            await page.screenshot(path=str(ARTIFACTS / "ui-workflows-approved.png"))
            # The workflow page decodes its input through the codec server `dev up` started.
            await page.goto(
                f"http://localhost:{stack.ui_port}/namespaces/default/workflows/{application_id}"
            )
            await page.get_by_text('"disease_code"').first.wait_for(timeout=20000)
            await page.screenshot(path=str(ARTIFACTS / "ui-workflow-decoded.png"), full_page=True)
        finally:
            await browser.close()
