"""One typed settings object, read from the environment and validated at start.

Every variable is documented in `.env.example`. A bad or missing value stops the process with a
single line naming the variable, never a traceback.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET_KEY = "dev-only-secret-key-not-for-production-use"  # noqa: S105  refused in production
DEV_MOCK_WEBHOOK_SECRET = "dev-only-mock-webhook-secret"  # noqa: S105  refused in production


class RunMode(StrEnum):
    DEV = "dev"
    TEST = "test"
    PRODUCTION = "production"


class SettingsError(SystemExit):
    """A setting is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, env_ignore_empty=True, extra="ignore", case_sensitive=False)

    paytime_env: RunMode = RunMode.DEV
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'data' / 'paytime.db'}"
    redis_url: str | None = None
    redis_db: int = Field(default=7, ge=0, le=15)
    secret_key: str = DEV_SECRET_KEY
    base_url: str = "http://localhost:3000"
    port: int = Field(default=3000, ge=1, le=65535)
    log_level: str = "INFO"
    log_json: bool = True
    trusted_proxy_hops: int = Field(default=0, ge=0, le=5)

    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    mail_from: str = "PayTime <no-reply@paytime.local>"

    payment_provider_default: str = "mock"
    mock_webhook_secret: str = DEV_MOCK_WEBHOOK_SECRET
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    monnify_api_key: str | None = None
    monnify_secret_key: str | None = None
    monnify_contract_code: str | None = None
    monnify_base_url: str = "https://sandbox.monnify.com"
    flutterwave_secret_key: str | None = None
    flutterwave_secret_hash: str | None = None
    flutterwave_base_url: str = "https://api.flutterwave.com"

    google_client_id: str | None = None
    google_client_secret: str | None = None
    google_discovery_url: str = "https://accounts.google.com/.well-known/openid-configuration"
    github_client_id: str | None = None
    github_client_secret: str | None = None
    github_authorize_url: str = "https://github.com/login/oauth/authorize"
    github_token_url: str = "https://github.com/login/oauth/access_token"  # noqa: S105  a URL
    github_api_url: str = "https://api.github.com"

    new_device_check: bool | None = None
    # Transfers to friends of at least this much (minor units) need a TOTP or emailed code; about 100 USD.
    transfer_step_up_usd_minor: int = Field(default=100_00, ge=1)
    transfer_step_up_ngn_minor: int = Field(default=150_000_00, ge=1)
    jobs_in_app: bool = True
    jobs_poll_seconds: float = Field(default=1.0, gt=0, le=60)

    # Uploaded media (event covers): outside the repository, on storage every app host shares.
    media_dir: Path = PROJECT_ROOT / "data" / "media"

    booking_hold_minutes: int = Field(default=15, ge=1, le=24 * 60)
    platform_fee_bps: int = Field(default=500, ge=0, le=5000)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://")):
            raise ValueError("must be a redis:// or rediss:// URL")
        return value or None

    @field_validator("media_dir")
    @classmethod
    def _media_dir_from_project_root(cls, value: Path) -> Path:
        return value if value.is_absolute() else PROJECT_ROOT / value

    @field_validator("base_url")
    @classmethod
    def _absolute_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _no_default_secrets_in_production(self) -> Settings:
        if self.paytime_env is not RunMode.PRODUCTION:
            return self
        if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
            raise ValueError("SECRET_KEY: set a random value of at least 32 characters in production")
        if self.mock_webhook_secret == DEV_MOCK_WEBHOOK_SECRET:
            raise ValueError("MOCK_WEBHOOK_SECRET: set a random value in production")
        return self

    @property
    def is_production(self) -> bool:
        return self.paytime_env is RunMode.PRODUCTION

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the psycopg 3 driver named explicitly."""
        url = self.database_url
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def new_device_check_enabled(self) -> bool:
        """On by default in production, off by default elsewhere (the embedded demo ships with it off)."""
        return self.is_production if self.new_device_check is None else self.new_device_check

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    @property
    def dev_mailbox_enabled(self) -> bool:
        """Mail lands in the in-app mailbox only when no SMTP server is configured outside production."""
        return not self.smtp_host and not self.is_production


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    variable = str(first["loc"][0]).upper() if first["loc"] else ""
    message = first["msg"].removeprefix("Value error, ")
    if ":" in message and message.split(":", 1)[0].isupper():
        return f"PayTime cannot start: {message}"
    return f"PayTime cannot start: {variable} is invalid: {message}"


def load_settings() -> Settings:
    """Read and validate settings; exit with one line naming the bad variable."""
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None


@functools.cache
def get_settings() -> Settings:
    return load_settings()
