"""Fixtures live in tests/fixtures/, one module per real component.

Every client, worker and CLI call of the test session shares one payload-encryption key (a
random one per session), as the processes of one deployment do.
"""

from __future__ import annotations

import base64
import json
import os
import secrets

os.environ.setdefault(
    "CHRONIC_CODEC_KEYS",
    json.dumps({"test-1": base64.b64encode(secrets.token_bytes(32)).decode()}),
)

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.temporal",
    "tests.fixtures.world",
    "tests.fixtures.cli",
    "tests.fixtures.proof",
]
