"""Fixtures live in tests/fixtures/, one module per real component.

Every client, worker and CLI call of the test session shares one payload-encryption key (a
random one per session), as the processes of one deployment do.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

from hypothesis import HealthCheck, settings

# Property tests (tests/test_properties.py): `ci` is fixed — the same examples on every run, no
# example database — so CI is reproducible; CHRONIC_HYPOTHESIS_PROFILE=deep explores more,
# with fresh random examples, when you have the time.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("deep", parent=settings.get_profile("ci"), derandomize=False)
settings.load_profile(os.environ.get("CHRONIC_HYPOTHESIS_PROFILE", "ci"))

# The key of the recorded histories (tests/histories/) is in the ring too, so they replay;
# CHRONIC_CODEC_CURRENT_KEY_ID=replay-1 records new ones with it.
_REPLAY_KEY = (Path(__file__).parent / "histories" / "replay-key.txt").read_text().strip()
os.environ.setdefault(
    "CHRONIC_CODEC_KEYS",
    json.dumps(
        {"test-1": base64.b64encode(secrets.token_bytes(32)).decode(), "replay-1": _REPLAY_KEY}
    ),
)
os.environ.setdefault("CHRONIC_CODEC_CURRENT_KEY_ID", "test-1")
# Workflow code runs in the full per-run sandbox here: a non-deterministic call fails a test.
os.environ.setdefault("CHRONIC_WORKFLOW_SANDBOX", "strict")

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.temporal",
    "tests.fixtures.world",
    "tests.fixtures.cli",
    "tests.fixtures.proof",
    "tests.fixtures.scans",
    "tests.fixtures.dev_stack",
]
