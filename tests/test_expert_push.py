"""Push, not only pull (issue 11): the drawn expert is told by SMS, with a link to the task and
nothing of the applicant, and reminded once before the 24-hour window closes; the applicant's
SMS link to their timeline. On the time-skipping server with the real activities; the SMS
outbox is what the log gateway would have sent.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col

from models.domain import ApplicationStatus
from models.messages import AcceptOffer, Decide
from models.tables import SmsOutbox
from tests import support
from tests.fixtures.world import World
from workflows.application import ApplicationWorkflow


async def expert_sms(world: World, application_id: str, count: int) -> list[SmsOutbox]:
    """The SMS to the experts of an application's offers, once ``count`` of them are sent."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        async with world.db.session() as session:
            rows = list(
                await session.scalars(
                    sa.select(SmsOutbox)
                    .where(col(SmsOutbox.dedup_key).startswith(f"{application_id}:offer:"))
                    .order_by(col(SmsOutbox.id))
                )
            )
        sent = [r for r in rows if r.status == "sent"]
        if len(sent) >= count:
            return sent
        assert asyncio.get_running_loop().time() < deadline, [r.dedup_key for r in rows]
        await asyncio.sleep(0.1)


async def test_the_drawn_expert_gets_a_link_and_one_reminder_when_slow(world: World) -> None:
    handle = await world.start()
    hall = world.settings.hall_url
    first = await support.pending_offer(handle)
    [offered] = await expert_sms(world, handle.id, 1)
    assert offered.template == "expert_offer" and offered.dedup_key == f"{handle.id}:offer:1"
    assert offered.recipient == (await support.expert(world.db, first.expert)).mobile
    assert offered.application_id is None  # not one of the applicant's messages
    assert offered.params["to_expert"] == first.expert
    assert offered.params["link"] == f"{hall}/t/{handle.id}"
    text = offered.params["text"]
    assert text.endswith(f"{hall}/t/{handle.id}") and offered.params["deadline"] in text
    # Nothing of the applicant: no name, ID number, mobile or disease.
    for personal in ("测试", support.WANG, "13803981234", "糖尿病"):
        assert all(personal not in value for value in offered.params.values()), personal

    await world.env.sleep(timedelta(hours=19))  # the reminder is due at 20 h (4 h before)
    await support.deliveries_done(handle)
    assert [r.template for r in await expert_sms(world, handle.id, 1)] == ["expert_offer"]
    await world.env.sleep(timedelta(hours=1, minutes=1))
    reminded = await expert_sms(world, handle.id, 2)
    assert [r.dedup_key for r in reminded] == [
        f"{handle.id}:offer:1",
        f"{handle.id}:offer:1:reminder",
    ]
    assert reminded[1].template == "expert_offer_reminder"
    assert reminded[1].params["link"] == f"{hall}/t/{handle.id}"

    # The window closes: the lapse draws the next expert, told in turn; still one reminder.
    await world.env.sleep(timedelta(hours=4))
    second = await support.pending_offer(handle, seq=2)
    sms = await expert_sms(world, handle.id, 3)
    assert [r.dedup_key for r in sms] == [
        f"{handle.id}:offer:1",
        f"{handle.id}:offer:1:reminder",
        f"{handle.id}:offer:2",
    ]
    assert sms[2].params["to_expert"] == second.expert != first.expert

    # The applicant's SMS link to their timeline (the application ID: nothing personal).
    [submitted] = await support.outbox(world.db, handle)
    assert submitted.template == "submitted"
    assert submitted.params["text"].endswith(f"：{hall}/a/{handle.id}")


async def test_an_expert_who_accepts_first_is_not_reminded_and_the_result_links_the_timeline(
    world: World,
) -> None:
    handle = await world.start(application=support.form(support.LI, "DIAL"))
    offer = await support.pending_offer(handle)
    await handle.execute_update(ApplicationWorkflow.accept, AcceptOffer(expert=offer.expert))
    await world.env.sleep(timedelta(hours=21))  # past the moment a reminder would have gone
    await handle.execute_update(
        ApplicationWorkflow.decide, Decide(expert=offer.expert, approve=True, opinion="符合")
    )
    assert (await handle.result()).status == ApplicationStatus.APPROVED

    assert [r.template for r in await expert_sms(world, handle.id, 1)] == ["expert_offer"]
    sms = await support.outbox(world.db, handle)
    assert [s.template for s in sms] == ["submitted", "approved"]
    link = f"{world.settings.hall_url}/a/{handle.id}"
    assert all(s.params["link"] == link and s.params["text"].endswith(link) for s in sms)
