"""`chronic schedule ensure|list`: the office's Temporal Schedules (chronic/schedules.py)."""

from __future__ import annotations

import typer

from chronic.cli.output import console, office_region, run, temporal

app = typer.Typer(no_args_is_help=True, help="The office's recurring work (Temporal Schedules).")


def ensure() -> None:
    """Create the region's schedules, or update them to this version (safe to repeat)."""
    from chronic import schedules
    from chronic.settings import get_settings

    region = office_region()

    async def main() -> list[schedules.Ensured]:
        return await schedules.ensure(await temporal(), get_settings().policy(region))

    for done in run(main):
        console.print(f"{done.schedule_id}: {'created' if done.created else 'updated'}")


def list_() -> None:
    """Each schedule, its next runs and its last one."""

    async def main() -> None:
        client = await temporal()
        async for listed in await client.list_schedules():
            described = await client.get_schedule_handle(listed.id).describe()
            upcoming = ", ".join(
                f"{t:%Y-%m-%d %H:%M} UTC" for t in described.info.next_action_times[:2]
            )
            recent = described.info.recent_actions
            last = f"{recent[-1].started_at:%Y-%m-%d %H:%M} UTC" if recent else "never"
            paused = " (paused)" if described.schedule.state.paused else ""
            console.print(f"{listed.id}{paused}: next {upcoming or '-'}; last run {last}")

    run(main)


app.command()(ensure)
app.command(name="list")(list_)
