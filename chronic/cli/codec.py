"""`chronic codec-server`: decrypt payloads for the Web UI and the `temporal` CLI."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import typer

from chronic.codec import CodecSettings, key_ring_from_settings
from chronic.settings import get_settings


def codec_server(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8081, help="TCP port to listen on."),
    show_token: bool = typer.Option(
        False, "--show-token", help="Also print the bearer token itself."
    ),
) -> None:
    """Run the codec server until Ctrl-C (POST /encode and /decode, bearer token, CORS)."""
    from chronic.codec_server import codec_token, serve, token_path, ui_origins

    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    codec_settings = CodecSettings()
    try:
        ring = key_ring_from_settings(settings, codec_settings)
        token = codec_token(settings, codec_settings)
    except ValueError as error:
        typer.echo(f"codec server: {error}", err=True)
        raise typer.Exit(2) from None
    token_source = (
        "CHRONIC_CODEC_TOKEN" if codec_settings.token is not None else str(token_path(settings))
    )

    def ready(url: str) -> None:
        typer.echo(f"codec server on {url}  (POST /encode, /decode; Ctrl-C stops it)")
        typer.echo(f"key ids: {', '.join(sorted(ring.keys))}; encrypting with {ring.current}")
        typer.echo(f"bearer token: {token if show_token else 'from ' + token_source}")
        typer.echo(f"CORS origins: {', '.join(ui_origins(settings, codec_settings))}")
        typer.echo(
            f'temporal CLI: --codec-endpoint {url} --codec-auth "Bearer $(cat {token_source})"'
            if codec_settings.token is None
            else f'temporal CLI: --codec-endpoint {url} --codec-auth "Bearer $CHRONIC_CODEC_TOKEN"'
        )
        typer.echo(f"Web UI codec endpoint: {url}/<token>")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or a container being stopped
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
                loop.add_signal_handler(signum, stop.set)
        await serve(settings, host, port, codec_settings=codec_settings, on_ready=ready, stop=stop)

    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(run())
        except OSError as error:  # typically: the port is taken
            typer.echo(f"codec server could not start on {host}:{port}: {error}", err=True)
            raise typer.Exit(1) from None
    typer.echo("codec server stopped")
