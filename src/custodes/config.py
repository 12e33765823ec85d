"""One typed settings object, read from ``CUSTODES_*`` environment variables.

Defaults run out of the box on one machine (SQLite in ``./.custodes``). In production
(``CUSTODES_ENVIRONMENT=production``) a development admin token is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from custodes.errors import ConfigError

__all__ = ["DEV_ADMIN_TOKEN", "Settings", "WitnessPeer"]

DEV_ADMIN_TOKEN = "custodes-dev-admin-token"  # noqa: S105 - refused in production below


class WitnessPeer(BaseModel):
    """A witness this node asks to cosign its checkpoints."""

    url: str
    vkey: str


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTODES_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path(".custodes")
    database_url: str | None = None
    origin: str = "custodes.example/log"
    jurisdiction: str = Field(default="ZZ", pattern=r"^[A-Z]{2}$")
    witness_name: str | None = None
    admin_token: str = DEV_ADMIN_TOKEN
    checkpoint_interval: float = Field(default=1.0, gt=0)
    integrate_delay: float = Field(default=0.05, ge=0)
    max_pending_entries: int = Field(default=20_000, gt=0)
    max_batch_entries: int = Field(default=2_000, gt=0)
    # A batch of max_batch_entries decisions of up to ~2 KB each; clients split larger
    # batches (the SDK halves its batch on 413). A single envelope is limited to one
    # entry's size (65,535 bytes) whatever this says.
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    # Bodies over one entry's size (batches) read and parsed at once; the next is 503.
    max_large_bodies: int = Field(default=4, gt=0)
    # Read deadlines (seconds): a request's headers, from the connection's opening or the
    # previous response; its body, from its headers. A client that trickles is dropped.
    header_timeout: float = Field(default=10.0, gt=0)
    body_timeout: float = Field(default=30.0, gt=0)
    keep_alive_timeout: int = Field(default=5, gt=0)
    # Open connections (kill-order streams included); beyond, new ones are closed at once.
    max_connections: int = Field(default=2048, gt=0)
    verify_threads: int = Field(default=2, gt=0)
    witnessed_logs: list[str] = Field(default_factory=list)
    witnesses: list[WitnessPeer] = Field(default_factory=list)
    witness_quorum: int = Field(default=0, ge=0)
    witness_timeout: float = Field(default=2.0, gt=0)
    lease_ttl_critical: int = Field(default=60, gt=0, le=60)
    lease_ttl_default: int = Field(default=300, gt=0)
    # Seconds between background audits of new entries (signatures, leaf hashes,
    # checkpoints; see custodes.registry.audit); 0 turns the background audit off.
    audit_interval: float = Field(default=600.0, ge=0)
    # Operability (docs/design/0011): log lines as text or one JSON object each; one
    # access line per request; OpenTelemetry traces when an OTLP endpoint is set (here,
    # or in OTEL_EXPORTER_OTLP_ENDPOINT).
    log_format: Literal["text", "json"] = "text"
    access_log: bool = False
    otel_endpoint: str | None = None

    @model_validator(mode="after")
    def _refuse_dev_secrets(self) -> Settings:
        explicit = "admin_token" in self.model_fields_set
        if self.environment == "production" and explicit and self.admin_token == DEV_ADMIN_TOKEN:
            raise ConfigError(
                "CUSTODES_ADMIN_TOKEN is the development default; set a secret token "
                "before running with CUSTODES_ENVIRONMENT=production"
            )
        return self

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL: ``CUSTODES_DATABASE_URL`` or a SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'custodes.db').resolve()}"

    @property
    def log_key_file(self) -> Path:
        return self.data_dir / "log.key"

    @property
    def witness_key_file(self) -> Path:
        return self.data_dir / "witness.key"

    @property
    def node_key_file(self) -> Path:
        return self.data_dir / "node.key"

    @property
    def cosigner_name(self) -> str:
        return self.witness_name or f"{self.origin}/witness"
