"""The server's settings: one class, read from `MILLWATCH_*` environment variables, flags on top."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from scraper.inventory import parse_duration
from server.auth.ratelimit import parse_rate
from server.errors import SettingsError
from server.hosts import default_allowed_hosts, normalize_host_pattern
from server.origins import normalize_origin

PACKAGE_STATIC_DIR = Path(__file__).resolve().parent / "static"
# The scraper's own default (scraper.service.DEFAULT_RETENTION_SECONDS), not imported from there:
# the settings are read by light commands (`millwatch check`) that do not load the scraper.
DEFAULT_RETENTION_SECONDS = 30 * 86400.0
DEFAULT_ROLLUP_RETENTION_SECONDS = 400 * 86400.0  # scraper.store's defaults, likewise not imported
DEFAULT_MINUTE_ROLLUP_RETENTION_SECONDS = 30 * 86400.0


class Settings(BaseSettings):
    """Every setting of `millwatch serve`; the environment variable of `x` is `MILLWATCH_X`."""

    model_config = SettingsConfigDict(env_prefix="MILLWATCH_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./millwatch.db",
        description="SQLAlchemy URL of the database (sqlite:///PATH or postgresql+psycopg://...)",
    )
    inventory: Path = Field(default=Path("machines.yaml"), description="the inventory file machines.yaml")
    notifications: Path | None = Field(
        default=None,
        description="the notification settings (default: notifications.yaml beside the inventory; "
        "a missing file means no channels)",
    )
    alerts: bool = Field(default=True, description="run the alert engine in this server process")
    data_dir: Path | None = Field(
        default=None,
        description="folder of the server's own files (floor plans); default: millwatch-data beside "
        "the SQLite database, or beside the inventory with PostgreSQL",
    )
    host: str = Field(default="127.0.0.1", description="address the server listens on")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port (0: any free port)")
    scrape: bool = Field(default=True, description="run the scraper in the server process")
    tile_url: str | None = Field(default=None, description="optional online map tile URL template")
    tile_attribution: str | None = Field(default=None, description="attribution shown with the tiles")
    static_dir: Path = Field(default=PACKAGE_STATIC_DIR, description="folder of the built web page")
    max_concurrency: int = Field(default=16, ge=1, le=1024, description="scrapes in flight at most")
    store_poll_interval: float = Field(
        default=2.0, gt=0, description="seconds between database reads when the scraper runs elsewhere"
    )
    retention: Annotated[float, BeforeValidator(parse_duration)] = Field(
        default=DEFAULT_RETENTION_SECONDS,
        description="samples older than this are deleted from the database (30d, 12h or seconds)",
    )
    rollup_retention: Annotated[float, BeforeValidator(parse_duration)] = Field(
        default=DEFAULT_ROLLUP_RETENTION_SECONDS,
        gt=0,
        description="hour rollups (min, avg, max, count) older than this are deleted (400d)",
    )
    minute_rollup_retention: Annotated[float, BeforeValidator(parse_duration)] = Field(
        default=DEFAULT_MINUTE_ROLLUP_RETENTION_SECONDS,
        gt=0,
        description="minute rollups older than this are deleted (30d)",
    )
    live_batch_interval: float = Field(
        default=0.2, gt=0, le=10, description="seconds over which live changes are gathered into one message"
    )
    live_queue_size: int = Field(
        default=64, ge=1, description="messages queued per WebSocket client before it is disconnected as slow"
    )
    live_ping_interval: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="seconds between pings to each WebSocket client; a page that misses 3 reconnects",
    )
    # NoDecode: the environment variable is either JSON or comma-separated, split by the validator.
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="origins (https://host[:port]) of other pages that may open the live WebSocket",
    )

    live_max_clients: int = Field(
        default=1000, ge=1, description="WebSocket clients at most; more are refused (close code 1013)"
    )
    live_max_clients_per_address: int = Field(
        default=50,
        ge=1,
        description="WebSocket clients at most from one address (a proxy in front counts as one address)",
    )
    live_max_message_bytes: int = Field(
        default=4096,
        ge=128,
        description="largest message a WebSocket client may send; larger ones close it (code 1009)",
    )
    # --- access control (docs/security.md) ---
    anonymous_read: bool = Field(
        default=False,
        description="let anyone read the fleet without logging in (wall screens); admin routes stay closed",
    )
    metrics_anonymous: bool = Field(
        default=False, description="let anyone read GET /metrics (otherwise a viewer login or token)"
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="host names the server answers to (Host header); default: localhost, 127.0.0.1, "
        "::1 and the listening address; `*` turns the check off",
    )
    session_lifetime: Annotated[float, BeforeValidator(parse_duration)] = Field(
        default=12 * 3600.0, gt=0, description="how long a page login lasts (12h, 30m or seconds)"
    )
    login_rate_per_address: str = Field(
        default="10/minute", description="failed logins allowed per client address (e.g. 10/minute)"
    )
    login_rate_per_user: str = Field(
        default="5/minute", description="failed logins allowed per login name (e.g. 5/minute)"
    )
    tls_cert_file: Path | None = Field(
        default=None, description="PEM certificate (chain) to serve HTTPS directly; needs tls_key_file"
    )
    tls_key_file: Path | None = Field(default=None, description="PEM private key of tls_cert_file")

    @property
    def tls(self) -> bool:
        """Whether the server itself speaks TLS (the session cookie is then marked Secure)."""
        return self.tls_cert_file is not None

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(
                "MILLWATCH_TLS_CERT_FILE and MILLWATCH_TLS_KEY_FILE (--tls-cert, --tls-key) go together: "
                "set both or neither"
            )
        return self

    @field_validator("login_rate_per_address", "login_rate_per_user")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    def effective_data_dir(self, inventory: Path | None = None) -> Path:
        """MILLWATCH_DATA_DIR, else `millwatch-data` beside the SQLite database file, else beside the
        inventory (`inventory`, default the setting)."""
        if self.data_dir is not None:
            return self.data_dir
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix):
            database = self.database_url[len(prefix) :].split("?", 1)[0]
            if database and database != ":memory:":
                return Path(database).parent / "millwatch-data"
        return (inventory or self.inventory).parent / "millwatch-data"

    @property
    def notifications_path(self) -> Path:
        """The notifications file in force: the setting, else notifications.yaml beside the inventory."""
        return self.notifications or self.inventory.parent / "notifications.yaml"

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        return _split_list(value, "origins")

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        return _split_list(value, "host names")

    @field_validator("allowed_hosts")
    @classmethod
    def _normalize_hosts(cls, value: list[str]) -> list[str]:
        return [normalize_host_pattern(host) for host in value]

    def effective_allowed_hosts(self) -> list[str]:
        """The Host names answered: MILLWATCH_ALLOWED_HOSTS, or loopback and the listening address."""
        if self.allowed_hosts:
            return list(self.allowed_hosts)
        return default_allowed_hosts(self.host)

    @field_validator("allowed_origins")
    @classmethod
    def _normalize_origins(cls, value: list[str]) -> list[str]:
        return [normalize_origin(origin) for origin in value]


def _split_list(value: Any, what: str) -> Any:
    """A list setting from the environment: a JSON list or comma-separated words."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError as e:
            raise ValueError(f"not a JSON list of {what}: {e}") from None
    return [part.strip() for part in text.split(",") if part.strip()]


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment with `overrides` (flags) on top; None overrides are ignored.

    Raises SettingsError naming every invalid setting by its environment variable.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            name = ".".join(str(p) for p in err["loc"])
            # A value given as a flag is named as such; anything else came from the environment.
            label = name if name in given else f"MILLWATCH_{name.upper()}"
            # A check across settings (model validator) has no single name: its message names them.
            problems.append(f"{label}: {err['msg']}" if name else err["msg"].removeprefix("Value error, "))
        raise SettingsError(problems) from e
