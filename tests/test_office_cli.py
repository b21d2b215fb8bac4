"""`chronic office …` and `chronic hospital …` on a dev server: Wuhan's track A from the CLI."""

from __future__ import annotations

from tests import support
from tests.test_cli import Desk, desk  # noqa: F401 - the fixture
from tests.test_regions import ERJIA, TONGJI, wuhan_form, wuhan_register


async def test_a_clerk_and_a_hospital_take_wuhan_track_a_to_approval_from_the_cli(
    desk: Desk,  # noqa: F811
) -> None:
    person = await wuhan_register(desk.db)
    form = wuhan_form(person, "CA", TONGJI)
    submitted = await desk.cli("submit", desk.file("wuhan.json", form.model_dump(mode="json")))
    assert submitted.exit_code == 0, submitted.output
    app_id = submitted.stdout.strip().splitlines()[-1]
    await desk.until(
        app_id, lambda p: p.stage == "office_acceptance" and "accept or return" in p.waiting_for
    )

    early = await desk.cli("office", "confirm", app_id)
    assert early.exit_code == 1 and "does not wait for the office's confirmation" in early.stderr
    accepted = await desk.cli("office", "accept", app_id)
    assert accepted.exit_code == 0, accepted.output
    assert f"assessed by {TONGJI}" in accepted.stdout

    stranger = await desk.cli("hospital", "opinion", app_id, "-H", ERJIA, "--approve")
    assert stranger.exit_code == 1 and "not the assessment hospital" in stranger.stderr
    opinion = await desk.cli(
        "hospital", "opinion", app_id, "-H", TONGJI, "--approve", "-o", "符合认定标准"
    )
    assert opinion.exit_code == 0, opinion.output
    await desk.until(app_id, lambda p: p.stage == "office_confirmation")
    confirmed = await desk.cli("office", "confirm", app_id)
    assert confirmed.exit_code == 0, confirmed.output

    progress = await desk.until(app_id, lambda p: p.finished_at is not None)
    assert progress.status == "approved"
    actors = await support.audit_actors(desk.db, app_id, "status_in_review")
    assert any(a.startswith("clerk:") for a in actors)
    assert f"hospital:{TONGJI}" in actors
