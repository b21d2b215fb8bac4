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
) -> None:
    """Serve the hall until Ctrl-C: applicants sign in with an SMS code, experts review."""
    import uvicorn

    from chronic.hall.app import create_app

    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    bind, listen = host or settings.hall_host, port or settings.hall_port
    typer.echo(f"hall on http://{bind}:{listen}  (pages /, API /api, OpenAPI /api/openapi.json)")
    uvicorn.run(
        create_app(settings),
        host=bind,
        port=listen,
        proxy_headers=proxy_headers,
        log_level=settings.log_level.lower(),
    )
