"""Process-wide settings, read from the environment (``CHRONIC_`` prefix) and ``.env``.

Temporal connection details deliberately do *not* live here: they come from
``temporalio.envconfig`` (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, TLS and API-key
profiles in ``temporal.toml``), so one code path reaches a dev server, a cluster or Temporal
Cloud. See :mod:`chronic.temporal_client`.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.policy import PolicyProfile, load_policy


class Settings(BaseSettings):
    """Everything a chronic process needs to know about where it runs."""

    model_config = SettingsConfigDict(
        env_prefix="CHRONIC_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    state_dir: Path = Field(
        default=Path(".chronic"),
        description="Folder for the embedded stack's data: Temporal's SQLite file, the "
        "Postgres data directory, keys, logs and the dev-stack process table.",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CHRONIC_DATABASE_URL", "DATABASE_URL"),
        description="postgresql+asyncpg://… of the business database. Unset: the embedded "
        "Postgres in the state folder is used.",
    )
    postgres_port: int = Field(default=55432, description="TCP port of the embedded Postgres.")
    database_name: str = Field(default="chronic", description="Database in the embedded Postgres.")

    temporal_profile: str | None = Field(
        default=None, description="Profile of temporal.toml to use (envconfig); None = default."
    )
    temporal_default_address: str = Field(
        default="127.0.0.1:7233",
        description="Address used when neither TEMPORAL_ADDRESS nor a profile names one; also "
        "where `chronic dev up` starts the embedded dev server.",
    )
    temporal_ui_port: int = Field(default=8233, description="Web UI port of the dev server.")
    temporal_ui_url: str | None = Field(
        default=None,
        description="Address of the Temporal Web UI the hall's office pages link to (e.g. "
        "https://temporal.office.example). Unset: the dev server's UI next to the Temporal "
        "address, on temporal_ui_port.",
    )
    codec_server_port: int = Field(
        default=8081, description="Port of the codec server `dev up` starts for the Web UI."
    )

    region: str = Field(default="sanmenxia", description="Policy profile of this office.")
    policy_dir: Path | None = Field(
        default=None,
        description="Folder of the office's own editions of the profiles (<region>.toml, and "
        "catalogues/<region>.toml): a file there replaces the shipped profile of its region "
        "for new applications. Check one with `chronic policy check`, compare with `chronic "
        "policy diff`. Unset: the shipped profiles.",
    )
    policy_windows: dict[str, timedelta] = Field(
        default_factory=dict,
        description="Durations of the policy replaced for new applications, as JSON, e.g. "
        '{"accept_window": "PT30S"} — demos and end-to-end tests shorten the 24 h window '
        "this way. Empty in production.",
    )
    worker_shutdown_grace_seconds: float = Field(
        default=20.0,
        description="How long a worker waits for in-flight activities on SIGINT/SIGTERM "
        "before cancelling them (they are then retried by another worker).",
    )
    dev_restart_delay_seconds: float = Field(
        default=1.0,
        gt=0,
        description="`chronic dev up`: delay before restarting a process that died; it doubles "
        "with each death in a row (at most 30 s), and the fifth gives up.",
    )
    applicant_key_secret: SecretStr | None = Field(
        default=None,
        description="Key of the HMAC that stands for an ID number in Temporal (ApplicantKey). "
        "Unset: a key generated into the state folder on first use.",
    )
    draw_secret: SecretStr | None = Field(
        default=None,
        description="Key of the verifiable expert draws: each draw's seed is an HMAC under it, "
        "so nobody without it can foresee a draw and an auditor with it can re-derive one "
        "(`chronic audit draw`). Unset: a key generated into the state folder on first use.",
    )
    metrics_port_base: int | None = Field(
        default=9464,
        description="Prometheus /metrics of the workers: role N of `workers.ROLES` listens on "
        "base + N (9464 orchestration … 9468 notification). None disables the endpoints.",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Interface the metrics endpoints bind to."
    )
    sms_rate_per_second: float = Field(
        default=20.0,
        description="SMS sends per second across all notification workers (the task queue's "
        "activity rate limit); keep it under the provider's quota.",
    )
    reconcile_interval_seconds: float = Field(
        default=60.0,
        description="How often the review worker's reconciler makes application rows and "
        "workflows agree (it also runs once at worker start).",
    )
    reconcile_min_age_seconds: float = Field(
        default=60.0,
        description="An open row without a workflow gets one only once it is this old, so "
        "the reconciler never races a submission in flight.",
    )
    log_level: str = Field(default="INFO")
    workflow_sandbox: Literal["shared", "strict", "off"] = Field(
        default="shared",
        description="strict: every workflow run re-imports the workflow code in its own "
        "sandbox (about 280 KiB a cached workflow more); shared: the workflow code is imported "
        "once and shared, the sandbox still isolating everything else; off: no sandbox, "
        "a quarter to a third less CPU in the orchestration worker and no interception of a "
        "non-deterministic call at run time. The test suite runs strict, so such a call in "
        "workflow code fails there.",
    )
    workflow_cache_size: int = Field(
        default=1000,
        ge=0,
        description="Runs an orchestration worker keeps in memory (its sticky cache; the "
        "SDK's default). Each costs some 170-200 KiB at the accept stage, so the worker's "
        "memory is bounded by this, not by the number of open applications; a run not held "
        "is replayed from its history when it next has work. 0 holds none: every task "
        "replays.",
    )
    hall_port: int = Field(
        default=8090, description="Port of the online service hall (`chronic hall`)."
    )
    hall_host: str = Field(
        default="127.0.0.1", description="Interface the online service hall listens on."
    )
    hall_public_url: str | None = Field(
        default=None,
        description="The hall's address as people reach it (https://hall.example.gov.cn): the "
        "SMS links to an applicant's timeline and an expert's task start with it. Unset: "
        "http://<hall_host>:<hall_port>, right for one machine only.",
    )
    hall_workers: int = Field(
        default=1,
        ge=1,
        le=32,
        description="Processes serving the hall (`chronic hall`; `--workers` overrides it). "
        "Sessions, rate limits and every page's data are in the database, so any process "
        "answers any request. 1 suits a 2-core machine that also runs Postgres, Temporal "
        "and the workers; give the hall a process per core it may have to itself.",
    )
    hall_db_pool_size: int = Field(
        default=10,
        ge=1,
        description="Database connections each hall process keeps open; a page holds one "
        "for each of its (one or two) queries' transactions, so 10 serve dozens of pages "
        "in flight. Mind Postgres' max_connections: processes × (pool + overflow).",
    )
    hall_db_max_overflow: int = Field(
        default=10,
        ge=0,
        description="Connections a hall process may open beyond its pool at a peak (closed "
        "again once returned).",
    )
    hall_secret: SecretStr | None = Field(
        default=None,
        description="Key of the hall's CSRF tokens and of the keyed hashes of sign-in codes "
        "and rate-limit counts. Unset: a key generated into the state folder on first use.",
    )
    document_store_url: str | None = Field(
        default=None,
        description="Where applicants' scans and photos are kept (encrypted): s3://bucket/prefix "
        "for S3-compatible object storage (MinIO in the compose file). Unset: the state "
        "folder's documents/.",
    )
    document_store_endpoint: str | None = Field(
        default=None,
        description="Endpoint of the S3-compatible storage, e.g. http://minio:9000; unset for "
        "AWS S3 itself.",
    )
    document_store_region: str = Field(
        default="us-east-1", description="Region of the S3 bucket (MinIO accepts any)."
    )
    document_store_access_key_id: str | None = Field(
        default=None, description="Access key of the S3-compatible storage."
    )
    document_store_secret_access_key: SecretStr | None = Field(
        default=None, description="Secret key of the S3-compatible storage."
    )
    document_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='AES-256 keys of the stored documents by key id, as JSON: {"2026-11": '
        '"<base64 of 32 bytes>"}; the current one encrypts, every one decrypts. Empty: a '
        "development key generated into the state folder (key id dev-1).",
    )
    document_current_key_id: str | None = Field(
        default=None,
        description="The key id of CHRONIC_DOCUMENT_KEYS that encrypts new documents; may be "
        "omitted with a single key.",
    )
    document_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        gt=0,
        description="Largest scan or photo accepted, in bytes (10 MiB).",
    )
    document_max_pages: int = Field(
        default=30, gt=0, description="Most pages a PDF material may have."
    )
    operator: str | None = Field(
        default=None,
        description="Who runs operator commands (admin, sms resend) for the audit trail; "
        "defaults to the login name.",
    )

    @property
    def state_path(self) -> Path:
        """The state folder as an absolute path, created on first use."""
        path = self.state_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def policy(self, region: str) -> PolicyProfile:
        """The region's profile with :attr:`policy_windows` applied."""
        return load_policy(region, self.policy_dir).with_windows(**self.policy_windows)

    @property
    def hall_url(self) -> str:
        """The hall's public address without a trailing slash (see :attr:`hall_public_url`)."""
        url = self.hall_public_url or f"http://{self.hall_host}:{self.hall_port}"
        return url.rstrip("/")

    @property
    def uses_embedded_postgres(self) -> bool:
        return self.database_url is None

    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL of the business database."""
        if self.database_url is not None:
            return self.database_url
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.postgres_port}/{self.database_name}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process (read once)."""
    return Settings()
