"""One typed settings object: arguments, then ``CUSTODES_*`` variables, then the node's
config file, then defaults.

``custodes init`` writes the node's identity (origin, jurisdiction, witness name) and the
settings it was given to ``custodes.toml`` in the data directory; every command that opens
the node reads it back, so a restart without environment variables keeps its identity.
Environment variables still override a setting, but never the identity: a node whose
configured identity disagrees with the file is refused (``check_identity``).

Defaults run out of the box on one machine (SQLite in ``./.custodes``). In production
(``CUSTODES_ENVIRONMENT=production``) a development admin token is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from custodes.config_file import CONFIG_FILE, read_config, render_config
from custodes.errors import ConfigError

__all__ = [
    "CONFIG_FILE",
    "DEV_ADMIN_TOKEN",
    "IDENTITY",
    "Settings",
    "WitnessPeer",
    "check_identity",
    "configured",
    "pin_identity",
    "require_initialised",
    "write_config",
]

DEV_ADMIN_TOKEN = "custodes-dev-admin-token"  # noqa: S105 - refused in production below
ENV_PREFIX = "CUSTODES_"
# What makes a node this node: fixed at init, checked on every start.
IDENTITY = ("origin", "jurisdiction", "witness_name")
# Never written to the file: where the file lives, and a secret kept only hashed.
NOT_IN_FILE = frozenset({"data_dir", "admin_token"})
# Settings whose values an error message must not repeat.
_SECRET = frozenset({"admin_token", "database_url"})


class WitnessPeer(BaseModel):
    """A witness this node asks to cosign its checkpoints."""

    url: str
    vkey: str


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

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
    # Plain (version 1) decision records, clear text in the public log: still accepted
    # from SDKs that predate commitments; set false to take commitments only.
    accept_plain_decisions: bool = True
    witnessed_logs: list[str] = Field(default_factory=list)
    witnesses: list[WitnessPeer] = Field(default_factory=list)
    witness_quorum: int = Field(default=0, ge=0)
    witness_timeout: float = Field(default=2.0, gt=0)
    # How often the leader compares checkpoints with every peer (split views, 0027).
    gossip_interval: float = Field(default=5.0, gt=0)
    # The alliance's genesis roster (a TUF root.json, docs/design/0023), shipped out of
    # band; later versions arrive signed through the API and are kept in the database.
    roster_file: Path | None = None
    # Whether to ask every other active party of the roster to cosign this node's
    # checkpoints (besides CUSTODES_WITNESSES); off, only those configured are asked.
    ask_roster_witnesses: bool = True
    # Mutual recognition (docs/design/0028): whether this member recognises on its own
    # what satisfies the common scheme and carries the scheme's k member
    # countersignatures; seconds between the leader's audit-watch rounds (automatic
    # recognition, withdrawals, newer schemes); the parties whose accreditations it
    # trusts (JSON list of codes; unset: every member).
    auto_recognise: bool = False
    audit_watch_interval: float = Field(default=1.0, gt=0)
    trusted_accreditors: list[str] | None = None
    # Cross-border look-ups (docs/design/0025): seconds between reads of each peer's
    # checkpoint; the age past which a look-up asks the home node (or says it is stale);
    # how long to wait on a peer.
    mirror_interval: float = Field(default=0.5, gt=0)
    lookup_stale_after: float = Field(default=10.0, gt=0)
    mirror_timeout: float = Field(default=2.0, gt=0)
    # How often a node asks its peers for a newer roster version (catch-up after a
    # forward was missed), in seconds; 0 turns the polling off.
    roster_poll_interval: float = Field(default=3.0, ge=0)
    # Cross-border orders (docs/design/0026): the first retry of a forward whose home
    # node did not answer, doubling up to the most; the timeout of one delivery.
    forward_retry_initial: float = Field(default=0.5, gt=0)
    forward_retry_max: float = Field(default=30.0, gt=0)
    forward_timeout: float = Field(default=5.0, gt=0)
    # The red-teaming repository across the alliance (docs/design/0029): seconds between
    # the leader's pulls of each peer's own objects (catch-up after an outage; also once
    # at start; 0 turns pulling off), the most objects one pull answer carries, and the
    # timeout of one push or pull.
    redteam_pull_interval: float = Field(default=3.0, ge=0)
    redteam_pull_batch: int = Field(default=500, gt=0, le=1000)
    redteam_push_timeout: float = Field(default=5.0, gt=0)
    lease_ttl_critical: int = Field(default=60, gt=0, le=60)
    lease_ttl_default: int = Field(default=300, gt=0)
    # The deployment gate (docs/design/0028): a critical-sector agent is leased only where
    # its current model's audit is recognised and in force. Off: leases as before issue 10.
    deployment_gate: bool = True
    # How long the deployment gate keeps its answer for an agent (seconds; 0: never).
    gate_cache_ttl: float = Field(default=1.0, ge=0)
    # How long a kill-switch conformance test waits for the agent's halt record (ms).
    killswitch_test_deadline_ms: int = Field(default=5000, gt=0, le=60000)
    # Seconds between background audits of new entries (signatures, leaf hashes,
    # checkpoints; see custodes.registry.audit); 0 turns the background audit off.
    audit_interval: float = Field(default=600.0, ge=0)
    # Operability (docs/design/0011): log lines as text or one JSON object each; one
    # access line per request; OpenTelemetry traces when an OTLP endpoint is set (here,
    # or in OTEL_EXPORTER_OTLP_ENDPOINT).
    log_format: Literal["text", "json"] = "text"
    access_log: bool = False
    otel_endpoint: str | None = None

    # The settings given as arguments (not from the environment or the file).
    _given: frozenset[str] = PrivateAttr(default=frozenset())

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(describe_invalid(exc, values)) from exc
        except SettingsError as exc:
            raise ConfigError(f"invalid settings: {exc} (a list or object is JSON)") from exc
        self._given = frozenset(values)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        given = init_settings.init_kwargs if isinstance(init_settings, InitSettingsSource) else {}
        data_dir = given.get("data_dir") or env_settings().get("data_dir") or ".custodes"
        from_file = read_config(Path(data_dir) / CONFIG_FILE, set(cls.model_fields), NOT_IN_FILE)
        return init_settings, env_settings, InitSettingsSource(settings_cls, from_file)

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
    def config_file(self) -> Path:
        return self.data_dir / CONFIG_FILE

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

    @property
    def initialised(self) -> bool:
        """Whether the data directory holds a node (its config file or its log key)."""
        return self.config_file.exists() or self.log_key_file.exists()

    def source_of(self, name: str) -> str:
        """Where a setting's value came from, as a person would name it."""
        return _source(name, self._given, self.config_file)


def _source(name: str, given: frozenset[str] | dict[str, Any], config_file: Path) -> str:
    if name in given:
        return f"--{name.replace('_', '-')}"
    variable = ENV_PREFIX + name.upper()
    if any(key.upper() == variable for key in os.environ):
        return variable
    return str(config_file)


def describe_invalid(exc: ValidationError, given: dict[str, Any]) -> str:
    """One line naming each invalid setting, where it came from, and what is wrong."""
    config_file = Path(given.get("data_dir") or os.environ.get("CUSTODES_DATA_DIR") or ".custodes")
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "settings"
        where = _source(name, given, config_file / CONFIG_FILE)
        value = "" if name in _SECRET else f" = {error.get('input')!r}"
        path = ".".join(str(p) for p in error["loc"][1:])
        problems.append(f"{name}{'.' + path if path else ''} ({where}{value}): {error['msg']}")
    return "invalid setting " + "; ".join(problems)


def write_config(settings: Settings) -> Path:
    """Write the node's identity and explicitly given settings to its config file."""
    dumped = settings.model_dump(mode="json")
    values = {
        name: dumped[name]
        for name in type(settings).model_fields
        if name not in NOT_IN_FILE and (name in IDENTITY or name in settings.model_fields_set)
    }
    defaults = type(settings).model_construct().model_dump(mode="json")  # no sources read
    text = render_config(values, {k: v for k, v in defaults.items() if k not in NOT_IN_FILE})
    path = settings.config_file
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # may hold a DB password
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)
    return path


def check_identity(settings: Settings) -> None:
    """Refuse settings whose identity differs from the one the data directory was
    initialised with (an environment variable or an argument overriding it)."""
    pinned = configured(settings)
    for name in IDENTITY:
        if name not in pinned or pinned[name] == getattr(settings, name):
            continue
        if name == "witness_name" and _cosigner(pinned) == settings.cosigner_name:
            continue  # the default name spelled out: the same witness key
        raise ConfigError(
            f"{settings.data_dir} was initialised with {name} {pinned[name]!r} "
            f"({settings.config_file}), but {settings.source_of(name)} says "
            f"{getattr(settings, name)!r}; leave it out (the file decides), or use another "
            "data directory for another node"
        )


def configured(settings: Settings) -> dict[str, Any]:
    """What the config file says, read on its own (no environment, no arguments)."""
    path = settings.config_file
    pinned = read_config(path, set(type(settings).model_fields), NOT_IN_FILE)
    if pinned and "witness_name" not in pinned:
        pinned["witness_name"] = None
    return pinned


def _cosigner(pinned: dict[str, Any]) -> str:
    return str(pinned["witness_name"] or f"{pinned.get('origin')}/witness")


def pin_identity(settings: Settings) -> None:
    """On a node's first start, write its config file; on every later one, check it."""
    if settings.config_file.exists():
        check_identity(settings)
    else:
        write_config(settings)


def require_initialised(settings: Settings) -> None:
    """Refuse (one line) a command that needs an existing node where there is none."""
    if not settings.initialised:
        raise ConfigError(
            f"{settings.data_dir.resolve()} holds no node (no {CONFIG_FILE}, no log.key); "
            "run this where the node's data directory is, set CUSTODES_DATA_DIR, or create "
            "one with `custodes init`"
        )
