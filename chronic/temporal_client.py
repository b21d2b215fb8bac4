"""One way to reach Temporal, for the CLI, the workers and the tests.

The connection comes from ``temporalio.envconfig``: ``TEMPORAL_ADDRESS``,
``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, TLS settings and TOML profiles
(``TEMPORAL_CONFIG_FILE`` / ``TEMPORAL_PROFILE``). With nothing set it reaches the embedded dev
server. Payloads always go through the pydantic converter and the encryption codec.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime

from chronic.codec import encrypted_data_converter
from chronic.settings import Settings, get_settings


def data_converter(settings: Settings | None = None) -> DataConverter:
    """The data converter every client and worker uses: pydantic + AES-GCM payload encryption.

    Failure messages and stack traces are encrypted too; keys come from the codec settings
    (or a development key in the state folder).
    """
    return encrypted_data_converter(settings or get_settings())


def connect_options(settings: Settings | None = None) -> dict[str, Any]:
    """Keyword arguments for ``Client.connect`` from envconfig, with our defaults filled in."""
    settings = settings or get_settings()
    options: dict[str, Any] = dict(
        ClientConfig.load_client_connect_config(profile=settings.temporal_profile)
    )
    options.setdefault("target_host", settings.temporal_default_address)
    options.setdefault("namespace", "default")
    return options


async def connect(settings: Settings | None = None, *, runtime: Runtime | None = None) -> Client:
    """Connect to the configured Temporal service."""
    options = connect_options(settings)
    if runtime is not None:
        options["runtime"] = runtime
    return await Client.connect(data_converter=data_converter(settings), **options)
