"""The codec server: lets the Web UI and the ``temporal`` CLI show decrypted payloads.

It speaks Temporal's remote codec protocol: ``POST …/encode`` and ``POST …/decode`` with a
``Payloads`` message as protobuf JSON (``{"payloads": [{"metadata": {…}, "data": "<base64>"}]}``)
and the same shape back; only the last path segment selects the operation, so
``/{namespace}/decode`` works as well (one key ring serves every namespace).

Callers authenticate with ``Authorization: Bearer <token>`` (the CLI: ``--codec-auth "Bearer
<token>"``). The Web UI of the dev server cannot send a static bearer token (it only forwards an
OIDC access token, and only over HTTPS), so a path segment equal to the token is accepted too:
point the UI at ``http://127.0.0.1:8081/<token>`` and it calls ``/<token>/decode``. The token
comes from ``CHRONIC_CODEC_TOKEN`` or is generated once into ``<state>/keys/codec-token``. CORS
preflights (``OPTIONS``) from the allowed UI origins are answered without a token. Request paths
are never logged, so a token in the URL does not end up in logs.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from chronic.codec import CodecError, CodecSettings, codec_from_settings
from chronic.privacy import state_secret
from chronic.settings import Settings

log = logging.getLogger("chronic.codec_server")

TOKEN_NAME = "codec-token"
MAX_BODY = 16 * 1024 * 1024
ALLOWED_HEADERS = "content-type, authorization, x-namespace"
ALLOWED_METHODS = "POST, OPTIONS"


def token_path(settings: Settings) -> Path:
    """Where the generated token is kept (used only when ``CHRONIC_CODEC_TOKEN`` is unset)."""
    return settings.state_path / "keys" / TOKEN_NAME


def codec_token(settings: Settings, codec_settings: CodecSettings | None = None) -> str:
    """The bearer token: the setting, else a random one generated into the state folder."""
    codec_settings = codec_settings if codec_settings is not None else CodecSettings()
    if codec_settings.token is not None:
        token = codec_settings.token.get_secret_value().strip()
        if token:
            return token
    return state_secret(settings, TOKEN_NAME).hex()


def ui_origins(settings: Settings, codec_settings: CodecSettings | None = None) -> list[str]:
    """Browser origins allowed by CORS: the setting, else the dev server's Web UI."""
    codec_settings = codec_settings if codec_settings is not None else CodecSettings()
    if codec_settings.ui_origins is not None:
        return [origin.rstrip("/") for origin in codec_settings.ui_origins]
    port = settings.temporal_ui_port
    return [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]


@dataclass(frozen=True)
class _Config:
    codec: PayloadCodec
    token: str
    origins: frozenset[str]


def build_app(codec: PayloadCodec, token: str, origins: Sequence[str]) -> web.Application:
    """The aiohttp application (exposed for embedding; most callers want :func:`serve`)."""
    if not token:
        raise ValueError("the codec server needs a non-empty token")
    config = _Config(codec, token, frozenset(origins))
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_cors_middleware(config)])
    handler = _handler(config)
    app.router.add_route(hdrs.METH_POST, "/{path:.*}", handler)
    app.router.add_route(hdrs.METH_OPTIONS, "/{path:.*}", _preflight(config))
    return app


def _cors_headers(config: _Config, request: web.Request) -> dict[str, str]:
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None or origin.rstrip("/") not in config.origins:
        return {}
    return {
        hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: origin,
        hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS: "true",
        hdrs.VARY: "Origin",
    }


def _cors_middleware(config: _Config) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Every answer, errors included, carries the CORS grant: else the browser hides the
        # reason (401, 413, …) from the UI.
        try:
            response = await handler(request)
        except web.HTTPException as error:
            error.headers.update(_cors_headers(config, request))
            raise
        response.headers.update(_cors_headers(config, request))
        return response

    return middleware


def _preflight(config: _Config) -> Handler:
    async def preflight(request: web.Request) -> web.StreamResponse:
        headers = _cors_headers(config, request)
        if not headers:
            return web.Response(status=403, text="origin not allowed\n")
        return web.Response(
            status=204,
            headers={
                hdrs.ACCESS_CONTROL_ALLOW_HEADERS: ALLOWED_HEADERS,
                hdrs.ACCESS_CONTROL_ALLOW_METHODS: ALLOWED_METHODS,
                hdrs.ACCESS_CONTROL_MAX_AGE: "600",
            },
        )

    return preflight


def _authorized(config: _Config, request: web.Request, segments: list[str]) -> bool:
    expected = config.token.encode()
    scheme, _, credential = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(credential.strip().encode(), expected):
        return True
    # The dev UI cannot send a bearer token: it may carry the token in its endpoint's path.
    return any(hmac.compare_digest(segment.encode(), expected) for segment in segments[:-1])


def _handler(config: _Config) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        segments = [part for part in request.path.split("/") if part]
        operation = segments[-1] if segments else ""
        if operation not in ("encode", "decode"):
            return web.Response(status=404, text="POST …/encode or …/decode\n")
        if not _authorized(config, request, segments):
            return web.Response(
                status=401,
                text="missing or wrong bearer token\n",
                headers={hdrs.WWW_AUTHENTICATE: 'Bearer realm="chronic codec"'},
            )
        try:
            payloads = json_format.Parse(
                await request.read(), Payloads(), ignore_unknown_fields=True
            )
        except (json_format.ParseError, UnicodeDecodeError, ValueError) as error:
            return web.Response(status=400, text=f"body is not Payloads JSON: {error}\n")
        try:
            converted: list[Payload] = await (
                config.codec.encode(payloads.payloads)
                if operation == "encode"
                else config.codec.decode(payloads.payloads)
            )
        except CodecError as error:
            return web.Response(status=400, text=f"{error}\n")
        namespace = request.headers.get("X-Namespace", "-")
        log.debug("%s %d payloads (namespace %s)", operation, len(converted), namespace)
        # Always a "payloads" list (MessageToJson would drop an empty one): the UI reads it.
        return web.json_response(
            {"payloads": [json_format.MessageToDict(payload) for payload in converted]}
        )

    return handle


def _app_from_settings(settings: Settings, codec_settings: CodecSettings | None) -> web.Application:
    codec_settings = codec_settings if codec_settings is not None else CodecSettings()
    return build_app(
        codec_from_settings(settings, codec_settings),
        codec_token(settings, codec_settings),
        ui_origins(settings, codec_settings),
    )


@asynccontextmanager
async def running_codec_server(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    codec_settings: CodecSettings | None = None,
) -> AsyncIterator[str]:
    """The codec server in this process while the block runs; yields its base URL.

    ``port=0`` picks a free port (tests)."""
    runner = web.AppRunner(_app_from_settings(settings, codec_settings), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        # The bound address tells the real port when port=0 asked for a free one.
        bound_port = runner.addresses[0][1] if runner.addresses else port
        shown_host = f"[{host}]" if ":" in host else host
        yield f"http://{shown_host}:{bound_port}"
    finally:
        await runner.cleanup()


async def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8081,
    *,
    codec_settings: CodecSettings | None = None,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the codec server until ``stop`` is set (or the task is cancelled)."""
    async with running_codec_server(settings, host, port, codec_settings=codec_settings) as url:
        if on_ready is not None:
            on_ready(url)
        else:
            log.info("codec server listening on %s", url)
        await (stop or asyncio.Event()).wait()
