"""docker-compose.yml: valid Compose, and wired the way the code reads it.

No Docker engine runs here, so the file is checked as data, after the same variable
interpolation compose does (required secrets given test values): against the Compose
Specification's JSON schema, and against the code it configures. Each process's environment is
fed to the real settings classes (``Settings``, ``CodecSettings``, ``temporalio.envconfig``), so
"points at the temporal service" means "the client would connect there". The healthcheck probes
and the namespace job's script are run for real: the probes against a metrics endpoint and the
codec server, the script with the real ``temporal`` CLI against a dev server.

``tests/data/compose-spec.json`` is the Compose Specification's ``schema/compose-spec.json``
(compose-spec/compose-spec, Apache-2.0), taken from the npm package ``dclint`` 3.1.0, which
ships it as ``schemas/compose.schema.json`` (sha256 46b7d35f19dd93a0…).
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import inspect
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from chronic.codec import CodecSettings, key_ring_from_settings
from chronic.codec_server import codec_token, running_codec_server, ui_origins
from chronic.db import Database
from chronic.embedded.temporal import find_binary
from chronic.settings import Settings
from chronic.sms.templates import TEMPLATES
from chronic.temporal_client import connect_options
from models import search_attributes
from tests.fixtures import free_port
from workers import ROLES
from workers.runner import metrics_port, role_module

ROOT = Path(__file__).parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = Path(__file__).parent / "data" / "compose-spec.json"
ENV_EXAMPLE = ROOT / "deploy" / "chronic.env.example"

SECRETS = {
    "TEMPORAL_DB_PASSWORD": secrets.token_hex(12),
    "APP_DB_PASSWORD": secrets.token_hex(12),
    "CHRONIC_CODEC_KEYS": json.dumps(
        {"k-test": base64.b64encode(secrets.token_bytes(32)).decode()}
    ),
    "CHRONIC_CODEC_CURRENT_KEY_ID": "k-test",
    "CHRONIC_CODEC_TOKEN": secrets.token_hex(16),
    "CHRONIC_APPLICANT_KEY_SECRET": secrets.token_hex(16),
    "CHRONIC_DRAW_SECRET": secrets.token_hex(16),
    "CHRONIC_HALL_SECRET": secrets.token_hex(16),
    "MINIO_ROOT_PASSWORD": secrets.token_hex(12),
    "CHRONIC_DOCUMENT_KEYS": json.dumps(
        {"d-test": base64.b64encode(secrets.token_bytes(32)).decode()}
    ),
    "CHRONIC_DOCUMENT_CURRENT_KEY_ID": "d-test",
}
"""Test values of the secrets the file requires (and nothing else: defaults stay defaults)."""
SECRETS_URL = f"postgresql+asyncpg://chronic:{SECRETS['APP_DB_PASSWORD']}@app-postgres/chronic"

TEMPORAL = "temporal"
APP_POSTGRES = "app-postgres"
CODEC_SERVER = "codec-server"
UI = "temporal-ui"
HALL = "hall"
MINIO = "minio"


# --- Compose's variable interpolation --------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_]\w*))")
_BRACED = re.compile(r"(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.DOTALL)


class MissingVariable(KeyError):
    """A ``${X:?…}`` / ``${X?…}`` variable without a value: compose refuses the file."""


def interpolate_text(text: str, env: Mapping[str, str]) -> str:
    """``text`` with compose's substitutions (``$$``, ``$X``, ``${X}``, ``:-``, ``-``, ``:?``,
    ``?``, ``:+``, ``+``) applied, from ``env``."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        braced = _BRACED.fullmatch(match["braced"])
        assert braced is not None, f"unsupported interpolation ${{{match['braced']}}}"
        assert "$" not in (braced["arg"] or ""), f"nested interpolation in {match[0]}"
        name, op, arg = braced["name"], braced["op"], braced["arg"] or ""
        value = env.get(name)
        unset_or_empty = not value if op and op.startswith(":") else value is None
        if op in (":-", "-"):
            return arg if unset_or_empty else str(value)
        if op in (":?", "?"):
            if unset_or_empty:
                raise MissingVariable(f"{name}: {arg}")
            return str(value)
        if op in (":+", "+"):
            return "" if unset_or_empty else arg
        return value or ""

    return _VARIABLE.sub(substitute, text)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate_text(node, env)
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env) for value in node]
    return node


def load_compose(env: Mapping[str, str] = SECRETS) -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    result: dict[str, Any] = interpolate(loaded, env)
    return result


def strings(node: Any) -> Iterator[str]:
    """Every string value of a loaded YAML document (comments are not part of it)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def values_text() -> str:
    """The file's values, uninterpolated, one after another: where its variables are used."""
    return "\n".join(strings(yaml.safe_load(COMPOSE_FILE.read_text())))


def references(text: str) -> list[tuple[str, str]]:
    """(name, operator) of each variable ``text`` uses (``$$`` escapes are not variables)."""
    found = []
    for match in _VARIABLE.finditer(text):
        if match["named"]:
            found.append((match["named"], ""))
        elif match["braced"] is not None:
            braced = _BRACED.fullmatch(match["braced"])
            assert braced is not None, match[0]
            found.append((braced["name"], braced["op"] or ""))
    return found


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


# --- What the services are -------------------------------------------------------------------


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """The variables a container gets (entries without a value are unset: nothing passed)."""
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment in map form, so anchors can be merged"
    return {key: str(value) for key, value in env.items() if value is not None}


def role_of(service: Mapping[str, Any]) -> str | None:
    command = service.get("command")
    if isinstance(command, list) and len(command) == 2 and command[0] == "worker":
        return str(command[1])
    return None


def workers(services: Mapping[str, dict[str, Any]]) -> dict[str, str]:
    """Service name → role, for every service running ``chronic worker <role>``."""
    return {name: role for name, s in services.items() if (role := role_of(s)) is not None}


def is_job(service: Mapping[str, Any]) -> bool:
    """Runs to completion (a setup step or the operators' CLI), rather than serving."""
    return service.get("restart") == "no"


def uses_database(role: str) -> bool:
    """Whether the role's worker opens the business database (Resources opens it lazily)."""
    return "resources.database()" in inspect.getsource(importlib.import_module(ROLES[role]))


def runs_reconciler(role: str) -> bool:
    return getattr(role_module(role), "alongside", None) is not None


def temporal_clients(services: Mapping[str, dict[str, Any]]) -> list[str]:
    """The chronic processes that connect to Temporal: the workers, the hall and the CLI."""
    return [*workers(services), HALL, "cli"]


def database_users(services: Mapping[str, dict[str, Any]]) -> list[str]:
    return [
        "migrate",
        "cli",
        HALL,
        *(name for name, role in workers(services).items() if uses_database(role)),
    ]


@contextmanager
def process_env(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> Iterator[None]:
    """Exactly ``env`` as far as chronic's and Temporal's settings are concerned."""
    with monkeypatch.context() as patch:
        for key in list(os.environ):
            if key.startswith(("CHRONIC_", "TEMPORAL_")) or key == "DATABASE_URL":
                patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        yield


def settings_of(monkeypatch: pytest.MonkeyPatch, service: Mapping[str, Any]) -> Settings:
    with process_env(monkeypatch, environment(service)):
        return Settings(_env_file=None)


def codec_settings_of(monkeypatch: pytest.MonkeyPatch, service: Mapping[str, Any]) -> CodecSettings:
    with process_env(monkeypatch, environment(service)):
        return CodecSettings(_env_file=None)


def published(service: Mapping[str, Any], target: int) -> int:
    """The host port ``target`` of the service is published on."""
    for port in service.get("ports", []):
        assert isinstance(port, dict), "ports in long syntax"
        if int(port["target"]) == target:
            return int(port["published"])
    raise AssertionError(f"port {target} is not published")


def duration_seconds(text: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text}"
    return sum(float(number) * units[unit] for number, unit in parts)


# --- The file is Compose ---------------------------------------------------------------------


def test_the_vendored_schema_is_the_compose_specification() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["title"] == "Compose Specification"
    assert {"services", "volumes", "networks", "configs", "secrets"} <= set(schema["properties"])


def test_the_file_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA_FILE.read_text()))
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose)
    ]
    assert not errors, "\n".join(errors)
    # The validation has teeth: a misspelt key is refused.
    broken = json.loads(json.dumps(compose))
    broken["services"][TEMPORAL]["healthcheck"]["intervall"] = "5s"
    assert not validator.is_valid(broken)


def test_every_required_secret_is_refused_when_missing() -> None:
    used = references(values_text())
    required = {name for name, op in used if op == ":?"}
    assert required == set(SECRETS), "the secrets the file requires are the ones the tests give"
    for name in required:
        # Every use of a secret is the required form: none falls back to an empty value.
        assert {op for used_name, op in used if used_name == name} == {":?"}, name
        with pytest.raises(MissingVariable, match=name):
            load_compose({key: value for key, value in SECRETS.items() if key != name})
        with pytest.raises(MissingVariable, match=name):
            load_compose({**SECRETS, name: ""})


def test_no_secret_is_written_into_the_file() -> None:
    """Every password, key and token is a required variable or passed through, never a value."""
    raw_services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    secret_name = re.compile(r"PASSWORD|_PWD$|SECRET|TOKEN|_KEYS$|API_KEY|_KEY_DATA$")
    for name, service in raw_services.items():
        for key, value in (service.get("environment") or {}).items():
            if secret_name.search(key):
                assert value is None or re.fullmatch(r".*\$\{\w+:\?[^}]*\}.*", value), (name, key)
            if key == "DATABASE_URL":
                assert "${APP_DB_PASSWORD:?" in value, name


# --- Roles, images ---------------------------------------------------------------------------


def test_every_worker_role_has_one_replicated_service(services: dict[str, dict[str, Any]]) -> None:
    running = workers(services)
    assert sorted(running.values()) == sorted(ROLES), "one service per role of workers.ROLES"
    for name, role in running.items():
        service = services[name]
        assert name == role
        assert int(service["deploy"]["replicas"]) >= 2, f"{name}: one crash must leave a poller"
        assert "container_name" not in service and "ports" not in service, (
            f"{name}: replicas cannot share a container name or a host port"
        )


def test_every_image_is_pinned_and_ours_is_built_from_the_dockerfile(
    services: dict[str, dict[str, Any]],
) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    exact = re.compile(
        r"[\w./-]+:(\d+\.\d+(\.\d+)*(-[\w.]+)?"
        r"|RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ)"  # minio's releases are dated
        r"(@sha256:[0-9a-f]{64})?"
    )
    for name, service in services.items():
        image = service["image"]
        if "build" in service:
            assert service["build"] == {"context": ".", "dockerfile": "Dockerfile"}, name
            assert (ROOT / service["build"]["context"] / "Dockerfile").is_file()
            assert image == f"chronic:{version}", f"{name}: our image is tagged with our version"
        else:
            assert exact.fullmatch(image), f"{name}: {image} is not pinned to an exact version"
    # One Temporal version for the server and its admin tools (the schema matches the server).
    tags = {
        services[s]["image"].split(":")[1]
        for s in ("temporal", "temporal-schema", "temporal-namespace")
    }
    assert len(tags) == 1, tags


def test_the_dockerfile_installs_the_locked_project_from_pinned_images() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for base in re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE):
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*", base), f"{base} is not pinned"
    assert "uv sync --locked --no-dev" in dockerfile
    assert re.search(r"^USER\s+(?!root)\w+", dockerfile, re.MULTILINE), "runs unprivileged"
    assert re.search(r'^ENTRYPOINT \["chronic"\]', dockerfile, re.MULTILINE)
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"][
        "targets"
    ]["wheel"]["packages"]
    for package in packages:
        assert re.search(rf"^COPY {package} {package}$", dockerfile, re.MULTILINE), (
            f"the image lacks the package {package}"
        )


# --- Addresses -------------------------------------------------------------------------------


def test_chronic_processes_connect_to_the_temporal_service(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = environment(services[TEMPORAL])
    frontend = f"{TEMPORAL}:{server['FRONTEND_GRPC_PORT']}"
    assert published(services[TEMPORAL], int(server["FRONTEND_GRPC_PORT"]))
    namespace = environment(services["temporal-namespace"])["TEMPORAL_NAMESPACE"]
    for name in temporal_clients(services):
        with process_env(monkeypatch, environment(services[name])):
            options = connect_options(Settings(_env_file=None))
        assert options["target_host"] == frontend, name
        assert options["namespace"] == namespace, name
        assert "api_key" not in options and not options.get("tls"), name
    # The cluster's own parts reach the same frontend and namespace.
    assert environment(services["temporal-namespace"])["TEMPORAL_ADDRESS"] == frontend
    assert environment(services[UI])["TEMPORAL_ADDRESS"] == frontend
    assert environment(services[UI])["TEMPORAL_DEFAULT_NAMESPACE"] == namespace


def test_temporal_and_its_schema_job_use_the_temporal_database(
    services: dict[str, dict[str, Any]],
) -> None:
    database = environment(services["temporal-postgres"])
    server = environment(services[TEMPORAL])
    job = environment(services["temporal-schema"])
    assert server["POSTGRES_SEEDS"] == job["SQL_HOST"] == "temporal-postgres"
    assert server["POSTGRES_USER"] == job["SQL_USER"] == database["POSTGRES_USER"]
    assert server["POSTGRES_PWD"] == job["SQL_PASSWORD"] == database["POSTGRES_PASSWORD"]
    assert server["POSTGRES_PWD"] == SECRETS["TEMPORAL_DB_PASSWORD"]
    assert server["DB"] == job["SQL_PLUGIN"] == "postgres12"
    assert server["DB_PORT"] == job["SQL_PORT"] == "5432"
    script = services["temporal-schema"]["command"][0]
    schema_dir = re.search(r"schema=(\S+)", script)
    assert schema_dir and schema_dir[1] == "/etc/temporal/schema/postgresql/v12"
    for database_name, schema in (
        (server["DBNAME"], "temporal"),
        (server["VISIBILITY_DBNAME"], "visibility"),
    ):
        db = f"temporal-sql-tool --db {database_name}"
        assert f"{db} create\n" in script
        assert f"{db} setup-schema -v 0.0\n" in script
        assert f'{db} update-schema -d "$schema/{schema}/versioned"\n' in script


def test_database_users_reach_the_business_postgres(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    database = environment(services[APP_POSTGRES])
    users = database_users(services)
    assert "orchestration" not in users, "the workflow worker has no business with the database"
    for name in users:
        settings = settings_of(monkeypatch, services[name])
        assert not settings.uses_embedded_postgres, name
        url = make_url(settings.resolved_database_url())
        assert url.drivername == "postgresql+asyncpg", name
        assert (url.host, url.port) == (APP_POSTGRES, 5432), name
        assert url.username == database["POSTGRES_USER"], name
        assert url.password == database["POSTGRES_PASSWORD"] == SECRETS["APP_DB_PASSWORD"], name
        assert url.database == database["POSTGRES_DB"], name
    for name, service in services.items():
        if name not in users:
            assert "DATABASE_URL" not in environment(service), f"{name} needs no database"


def test_the_business_postgres_takes_every_pool_at_once(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    command = services[APP_POSTGRES]["command"]
    assert command[:2] == ["postgres", "-c"]
    limit = int(dict(arg.split("=") for arg in command[2::2])["max_connections"])
    pool = Database(SECRETS_URL).engine.pool
    assert isinstance(pool, QueuePool)
    per_process = pool.size() + getattr(pool, "_max_overflow")  # noqa: B009
    replicas = sum(
        int(services[name]["deploy"]["replicas"])
        for name, role in workers(services).items()
        if uses_database(role)
    )
    hall = services[HALL]
    hall_settings = settings_of(monkeypatch, hall)
    hall_processes = int(hall["command"][hall["command"].index("--workers") + 1])
    hall_pools = hall_processes * (
        hall_settings.hall_db_pool_size + hall_settings.hall_db_max_overflow
    )
    # The workers' and each hall process's pools full, migrate and two operators' CLIs,
    # Postgres' reserved slots.
    assert (replicas + 3) * per_process + hall_pools + 3 <= limit


def test_every_process_shares_one_key_ring(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = Settings(state_dir=tmp_path)
    rings = {
        name: key_ring_from_settings(settings, codec_settings_of(monkeypatch, services[name]))
        for name in [*temporal_clients(services), CODEC_SERVER]
    }
    expected = json.loads(SECRETS["CHRONIC_CODEC_KEYS"])
    for name, ring in rings.items():
        assert ring.current == SECRETS["CHRONIC_CODEC_CURRENT_KEY_ID"], name
        assert {k: base64.b64encode(v).decode() for k, v in ring.keys.items()} == expected, name
    assert not (tmp_path / "keys").exists(), "no process fell back to a generated key"


def test_the_applicant_key_secret_reaches_whoever_computes_applicant_keys(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    needing = {"cli", *(name for name, role in workers(services).items() if runs_reconciler(role))}
    assert needing > {"cli"}, "the review role's reconciler starts workflows"
    for name, service in services.items():
        secret = settings_of(monkeypatch, service).applicant_key_secret
        if name in needing:
            assert (
                secret is not None
                and secret.get_secret_value() == SECRETS["CHRONIC_APPLICANT_KEY_SECRET"]
            ), name
        else:
            assert secret is None, f"{name} does not need the applicant key secret"


def test_every_assignment_replica_and_the_auditor_draw_with_the_offices_one_key(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("assignment", "cli"):
        secret = settings_of(monkeypatch, services[name]).draw_secret
        assert secret is not None, f"{name} would draw with a key of its own"
        assert secret.get_secret_value() == SECRETS["CHRONIC_DRAW_SECRET"], name
    assert int(services["assignment"]["deploy"]["replicas"]) > 1


def test_the_hall_and_the_cli_keep_documents_in_the_minio_bucket_with_one_key_ring(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from chronic.documents import key_ring

    minio, job = services[MINIO], services["minio-bucket"]
    store = environment(minio)
    bucket_created = environment(job)["MINIO_BUCKET"]
    assert '"store/$MINIO_BUCKET"' in job["command"][0]
    assert job["depends_on"] == {MINIO: {"condition": "service_healthy"}}
    assert services[HALL]["depends_on"]["minio-bucket"] == {
        "condition": "service_completed_successfully"
    }
    assert {"documents:/data"} == set(minio["volumes"])
    expected_keys = json.loads(SECRETS["CHRONIC_DOCUMENT_KEYS"])
    for name in (HALL, "cli"):
        settings = settings_of(monkeypatch, services[name])
        assert settings.document_store_url == f"s3://{bucket_created}", name
        endpoint = urlsplit(settings.document_store_endpoint or "")
        assert endpoint.hostname == MINIO and endpoint.port == 9000, name
        assert settings.document_store_access_key_id == store["MINIO_ROOT_USER"], name
        secret = settings.document_store_secret_access_key
        assert secret is not None and secret.get_secret_value() == store["MINIO_ROOT_PASSWORD"]
        ring = key_ring(settings.model_copy(update={"state_dir": tmp_path}))
        assert ring.current == SECRETS["CHRONIC_DOCUMENT_CURRENT_KEY_ID"], name
        assert {k: base64.b64encode(v).decode() for k, v in ring.keys.items()} == expected_keys
    assert not (tmp_path / "keys").exists(), "no process fell back to a generated key"


def test_the_ui_reaches_the_codec_server_and_is_its_allowed_origin(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    codec = services[CODEC_SERVER]
    command = codec["command"]
    assert command[0] == "codec-server"
    listen = int(command[command.index("--port") + 1])
    assert command[command.index("--host") + 1] == "0.0.0.0"
    codec_settings = codec_settings_of(monkeypatch, codec)
    token = codec_token(Settings(state_dir=tmp_path), codec_settings)
    assert token == SECRETS["CHRONIC_CODEC_TOKEN"]

    # The UI calls <codec server as the browser sees it>/<token>/decode.
    endpoint = urlsplit(environment(services[UI])["TEMPORAL_CODEC_ENDPOINT"])
    assert endpoint.path == f"/{token}", "the token is the endpoint's path segment"
    assert endpoint.hostname == "localhost" and endpoint.port == published(codec, listen)

    # The codec server grants CORS to the UI's origin as the browser sees it.
    ui = services[UI]
    ui_port = published(ui, int(environment(ui)["TEMPORAL_UI_PORT"]))
    origins = ui_origins(Settings(state_dir=tmp_path), codec_settings)
    assert origins == [f"http://localhost:{ui_port}"]
    assert {p["host_ip"] for s in (codec, ui, services[TEMPORAL]) for p in s["ports"]} == {
        "127.0.0.1"
    }, "published on loopback by default: the office's reverse proxy fronts them"


# --- Health and order ------------------------------------------------------------------------


def test_every_long_running_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    long_running = [name for name, s in services.items() if not is_job(s)]
    assert {
        TEMPORAL,
        UI,
        APP_POSTGRES,
        "temporal-postgres",
        CODEC_SERVER,
        HALL,
        MINIO,
        *ROLES,
    } == set(long_running)
    for name in long_running:
        check = services[name].get("healthcheck", {})
        assert check.get("test", ["NONE"])[0] == "CMD" and not check.get("disable"), name
        assert services[name]["restart"] == "unless-stopped", name


def test_worker_healthchecks_probe_their_roles_metrics_port(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, role in workers(services).items():
        settings = settings_of(monkeypatch, services[name])
        assert settings.metrics_host == "0.0.0.0", f"{name}: Prometheus scrapes from outside"
        url = urlsplit(services[name]["healthcheck"]["test"][-1])
        assert (url.hostname, url.port, url.path) == (
            "127.0.0.1",
            metrics_port(role, settings),
            "/metrics",
        ), name


def test_workers_get_longer_to_stop_than_their_shutdown_grace(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in workers(services):
        grace = settings_of(monkeypatch, services[name]).worker_shutdown_grace_seconds
        assert duration_seconds(services[name]["stop_grace_period"]) >= grace + 5, name


def test_dependencies_exist_and_wait_for_readiness(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on a missing {dependency}"
            wanted = (
                "service_completed_successfully"
                if is_job(services[dependency])
                else "service_healthy"
            )
            assert spec["condition"] == wanted, f"{name} → {dependency}"

    def waits_for(name: str, dependency: str) -> bool:
        direct = services[name].get("depends_on") or {}
        return dependency in direct or any(waits_for(d, dependency) for d in direct)

    # `up --wait` accepts a job's exit only when a long-running service waits for it.
    for job in (name for name, s in services.items() if is_job(s) and "profiles" not in s):
        assert any(
            job in (s.get("depends_on") or {}) for s in services.values() if not is_job(s)
        ), f"nothing long-running waits for the job {job}"
    assert waits_for(TEMPORAL, "temporal-schema") and waits_for(
        "temporal-schema", "temporal-postgres"
    )
    assert waits_for("migrate", APP_POSTGRES) and waits_for(UI, TEMPORAL)
    for name, role in workers(services).items():
        # Workers start workflows and upsert search attributes: namespace and attributes first.
        assert waits_for(name, "temporal-namespace"), name
        assert waits_for(name, "migrate") == uses_database(role), name


def test_volumes_and_mounted_files_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).is_file(), f"{name} mounts a missing {source}"
            else:
                assert source in compose["volumes"], f"{name} uses an undeclared volume {source}"
    dynamic = environment(compose["services"][TEMPORAL])["DYNAMIC_CONFIG_FILE_PATH"]
    assert any(v.split(":")[1] == dynamic for v in compose["services"][TEMPORAL]["volumes"])
    assert yaml.safe_load((ROOT / "deploy/temporal/dynamicconfig.yaml").read_text())


def test_the_env_example_documents_every_variable() -> None:
    raw = values_text()
    used = {name for name, _ in references(raw)}
    passed_through = {
        key
        for service in yaml.safe_load(COMPOSE_FILE.read_text())["services"].values()
        for key, value in (service.get("environment") or {}).items()
        if value is None
    }
    example = ENV_EXAMPLE.read_text()
    required = set(re.findall(r"^(\w+)=", example, re.MULTILINE))
    optional = set(re.findall(r"^# (\w+)=", example, re.MULTILINE))
    assert required == set(SECRETS), "the example's uncommented lines are the required secrets"
    assert used | passed_through == required | optional
    for name, default in re.findall(r"\$\{(\w+):-([^}]*)\}", raw):
        assert f"# {name}={default}\n" in example, f"{name}: the example shows the default"


# --- The probes and the namespace job, run ---------------------------------------------------


def _probe_argv(test: list[str], url: str) -> list[str]:
    assert test[:3] == ["CMD", "python", "-c"]
    return [sys.executable, "-c", test[3], url]


def _probe(test: list[str], url: str) -> int:
    return subprocess.run(_probe_argv(test, url), timeout=30).returncode


async def _run(argv: list[str], env: Mapping[str, str]) -> tuple[int, str, str]:
    """``argv`` as a subprocess without blocking the event loop (servers of the test run on it)."""
    process = await asyncio.create_subprocess_exec(
        *argv, env=dict(env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@contextmanager
def metrics_endpoint(body: bytes) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def test_the_worker_probe_is_healthy_only_once_the_worker_polls(
    services: dict[str, dict[str, Any]],
) -> None:
    test = services["assignment"]["healthcheck"]["test"]
    # What a worker's runtime exports after connecting, before and after its worker polls.
    connected = b'temporal_request{operation="GetSystemInfo"} 1\n'
    polling = (
        connected + b'temporal_worker_task_slots_available{worker_type="ActivityWorker"} 100\n'
    )
    with metrics_endpoint(connected) as url:
        assert _probe(test, url) != 0
    with metrics_endpoint(polling) as url:
        assert _probe(test, url) == 0
    with metrics_endpoint(polling) as url:
        pass
    assert _probe(test, url) != 0, "nothing listening: unhealthy"


async def test_the_codec_probe_is_healthy_against_the_real_codec_server(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    codec = services[CODEC_SERVER]
    test = codec["healthcheck"]["test"]
    assert urlsplit(test[-1]).port == int(codec["command"][codec["command"].index("--port") + 1])
    settings = Settings(state_dir=tmp_path)
    async with running_codec_server(
        settings, codec_settings=codec_settings_of(monkeypatch, codec)
    ) as url:
        token = environment(codec)["CHRONIC_CODEC_TOKEN"]
        for sent, healthy in ((token, True), ("wrong", False)):
            env = {**os.environ, "CHRONIC_CODEC_TOKEN": sent}
            async with asyncio.timeout(30):
                returncode, _, _ = await _run(_probe_argv(test, f"{url}/encode"), env)
            assert (returncode == 0) is healthy, sent


async def test_the_hall_probe_is_healthy_against_the_hall_and_its_secret_reaches_it(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import uvicorn

    from chronic.db import Database as HallDatabase
    from chronic.hall.app import create_app

    hall = services[HALL]
    test = hall["healthcheck"]["test"]
    assert urlsplit(test[-1]).port == int(hall["command"][hall["command"].index("--port") + 1])
    settings = settings_of(monkeypatch, hall)
    assert settings.hall_secret is not None
    assert settings.hall_secret.get_secret_value() == SECRETS["CHRONIC_HALL_SECRET"]
    assert "--proxy-headers" in hall["command"]
    # The sign-in page needs neither the database nor Temporal: the probe sees the process.
    app = create_app(Settings(state_dir=tmp_path), db=HallDatabase(SECRETS_URL))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done()
            await asyncio.sleep(0.05)
        async with asyncio.timeout(30):
            returncode, _, _ = await _run(_probe_argv(test, f"http://127.0.0.1:{port}/login"), {})
        assert returncode == 0
    finally:
        server.should_exit = True
        await serving
    async with asyncio.timeout(30):
        returncode, _, _ = await _run(_probe_argv(test, f"http://127.0.0.1:{port}/login"), {})
    assert returncode != 0, "nothing listening: unhealthy"


def test_the_namespace_job_registers_the_products_search_attributes(
    services: dict[str, dict[str, Any]],
) -> None:
    pairs = environment(services["temporal-namespace"])["CHRONIC_SEARCH_ATTRIBUTES"].split()
    flags = search_attributes.cli_flags()
    assert pairs == flags[1::2], "models.search_attributes.ALL, in order, with the CLI's types"


async def test_the_namespace_job_script_runs_against_a_temporal_server(
    services: dict[str, dict[str, Any]],
) -> None:
    job = services["temporal-namespace"]
    assert job["entrypoint"] == ["sh", "-euc"]
    temporal_cli = Path(find_binary("temporal"))
    assert shutil.which("sh")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli), ui=False
    )
    try:
        job_env = {
            **environment(job),
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "PATH": f"{temporal_cli.parent}{os.pathsep}{os.environ['PATH']}",
        }
        for _ in range(2):  # a second `up` finds everything in place
            async with asyncio.timeout(180):
                returncode, stdout, stderr = await _run(
                    [*job["entrypoint"], *job["command"]], job_env
                )
            assert returncode == 0, stderr
            assert f"namespace {job_env['TEMPORAL_NAMESPACE']} ready" in stdout
        listed = await env.client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=job_env["TEMPORAL_NAMESPACE"])
        )
        assert {name: listed.custom_attributes[name] for name in listed.custom_attributes} == {
            key.name: key.indexed_value_type for key in search_attributes.ALL
        }
    finally:
        await env.shutdown()


def test_the_notification_service_is_given_every_sms_templates_code(
    services: dict[str, dict[str, Any]],
) -> None:
    """A template added to the product and forgotten here would fail only in production."""
    [notification] = [s for s in services.values() if role_of(s) == "notification"]
    passed = set(notification.get("environment") or {})  # passed through from the host
    example = (ROOT / "deploy" / "chronic.env.example").read_text(encoding="utf-8")
    for template in TEMPLATES.values():
        assert template.env_var in passed, template.env_var
        assert f"# {template.env_var}=" in example, template.env_var
