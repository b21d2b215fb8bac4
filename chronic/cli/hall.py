"""`chronic hall`: the online service hall (pages and JSON API) with uvicorn."""

from __future__ import annotations

import logging

import typer

from chronic.settings import get_settings


def hall(
    host: str | None = typer.Option(None, help="Interface (default CHRONIC_HALL_HOST, 127.0.0.1)."),
    port: int | None = typer.Option(None, help="TCP port (default CHRONIC_HALL_PORT, 8090)."),
    proxy_headers: bool = typer.Option(
        False,
        "--proxy-headers",
        help="Behind a TLS-terminating proxy: trust X-Forwarded-Proto/For (secure cookies).",
    ),
    workers: int | None = typer.Option(
        None,
        min=1,
        max=32,
        help="Processes serving the hall (default CHRONIC_HALL_WORKERS, 1; sessions live in "
        "the database).",
    ),
) -> None:
    """Serve the hall until Ctrl-C: applicants sign in with an SMS code, experts review."""
    import uvicorn

    from chronic.hall.app import create_app

    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    bind, listen = host or settings.hall_host, port or settings.hall_port
    workers = workers or settings.hall_workers
    typer.echo(f"hall on http://{bind}:{listen}  (pages /, API /api, OpenAPI /api/openapi.json)")
    uvicorn.run(
        # Several processes each build their own app from the factory.
        "chronic.hall.app:create_app" if workers > 1 else create_app(settings),
        factory=workers > 1,
        workers=workers,
        host=bind,
        port=listen,
        proxy_headers=proxy_headers,
        log_level=settings.log_level.lower(),
    )


def hall_load(
    url: str | None = typer.Option(None, help="The hall (default: CHRONIC_HALL_HOST:PORT)."),
    sessions: int = typer.Option(50, min=1, max=1000, help="Signed-in sessions at once."),
    rounds: int = typer.Option(10, min=1, help="Times each session asks for its pages."),
    pause: float = typer.Option(
        0.0,
        min=0.0,
        max=60.0,
        help="Seconds a session reads a page before the next (a person's pace, ±50 %); "
        "0: flat out, the hall saturated.",
    ),
) -> None:
    """Load check: SESSIONS signed-in sessions on the timeline and inbox pages at once; prints
    p50 / p95 / max page times. Development stacks only (SMS gateway `log`): the sessions are
    opened in the database, without signing in, and ended afterwards."""
    from chronic.cli.output import CommandFailed, console, database, run
    from chronic.hall.load import end_visits, open_visits, run_load
    from chronic.sms.settings import SmsSettings

    settings = get_settings()
    base = url or f"http://{settings.hall_host}:{settings.hall_port}"

    async def main() -> list[str]:
        if SmsSettings().gateway != "log":
            raise CommandFailed(
                "the load check opens sessions without signing in: only on a development "
                "stack (CHRONIC_SMS_GATEWAY=log)"
            )
        async with database() as db:
            try:
                visits = await open_visits(db, sessions)
            except LookupError as error:
                raise CommandFailed(
                    f"{error}: submit applications first (`chronic demo`)"
                ) from None
            try:
                report = await run_load(base, visits, rounds, pause=pause)
            finally:
                await end_visits(db, visits)
        pace = f"{pause:g} s between pages" if pause else "flat out"
        lines = [
            f"{report.sessions} sessions × {rounds} rounds, {pace}: {report.requests} pages in "
            f"{report.seconds:.1f} s ({report.requests / report.seconds:.0f}/s), "
            f"{report.errors} not 200"
        ]
        lines += [report.line(page) for page in sorted(report.times)]
        return lines

    for line in run(main):
        console.print(line)
