"""Settings: the only place that reads the environment (SPEC §3)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.crypto import Sealer, SecretKeyError
from bot.timezones import UnknownTimezone, validate_timezone


class ConfigError(Exception):
    """Bad configuration, with a message fit for one line on stderr."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        # A refused value (a key, a token) must not ride along in the error's details.
        hide_input_in_errors=True,
    )

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_state_secret: SecretStr | None = None
    slack_api_url: AnyHttpUrl = AnyHttpUrl("https://slack.com/api/")

    scenario_sdk_api_key: str | None = None
    scenario_sdk_api_secret: SecretStr | None = None
    scenario_base_url: AnyHttpUrl = AnyHttpUrl("https://api.cloud.scenario.com/v1")
    scenario_team_id: str | None = None
    scenario_app_url: AnyHttpUrl = AnyHttpUrl("https://app.scenario.com")

    budget_bot_db: Path = Path("budget-bot.db")
    budget_bot_check_interval: int = Field(default=300, ge=10, le=86_400)
    budget_bot_timezone: str = "UTC"
    budget_bot_admins: str = ""
    budget_bot_secret_key: SecretStr | None = None

    port: int = Field(default=3000, ge=1, le=65_535)

    @field_validator("budget_bot_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            return validate_timezone(value)
        except UnknownTimezone as exc:
            raise ValueError(f"unknown IANA timezone {value!r} (e.g. Europe/Paris)") from exc

    @field_validator("budget_bot_secret_key")
    @classmethod
    def _usable_secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None  # `BUDGET_BOT_SECRET_KEY=` left blank in .env: not set
        if value is not None:
            try:
                Sealer.from_setting(value.get_secret_value())
            except SecretKeyError as exc:
                raise ValueError(str(exc)) from None
        return value

    @property
    def sealer(self) -> Sealer | None:
        """What seals stored secrets; None when BUDGET_BOT_SECRET_KEY is not set."""
        key = self.budget_bot_secret_key
        return None if key is None else Sealer.from_setting(key.get_secret_value())

    @property
    def multi_workspace(self) -> bool:
        """Installed through OAuth into any workspace (SPEC §3): client ID and secret set,
        and no single-workspace bot token."""
        secret = self.slack_client_secret
        return (
            self.slack_bot_token is None
            and bool((self.slack_client_id or "").strip())
            and secret is not None
            and bool(secret.get_secret_value().strip())
        )

    def require_secret_key(self) -> Sealer:
        """Multi-workspace mode stores tokens and Scenario secrets: never without a key."""
        sealer = self.sealer
        if sealer is None:
            raise ConfigError(
                "BUDGET_BOT_SECRET_KEY is not set: multi-workspace mode stores Slack tokens and"
                " Scenario secrets encrypted with it (`budget-bot keygen` prints one)"
            )
        return sealer

    def require_serving_credentials(self) -> None:
        """What `serve`, `check` and `digest` need before any work: Scenario credentials in
        single-workspace mode (each workspace brings its own otherwise), the key in
        multi-workspace mode."""
        if self.multi_workspace:
            self.require_secret_key()
        else:
            self.require_scenario_credentials()

    @property
    def state_secret(self) -> bytes:
        """Signs the OAuth state: SLACK_STATE_SECRET, else derived from the secret key."""
        given = self.slack_state_secret
        if given is not None and given.get_secret_value().strip():
            return given.get_secret_value().encode("utf-8")
        return self.require_secret_key().derive(b"slack-oauth-state")

    @property
    def slack_authorize_url(self) -> str:
        """Slack's OAuth consent page, beside its Web API (https://slack.com/oauth/v2/authorize
        for the real one), so that a fake Slack at SLACK_API_URL serves it too."""
        return urljoin(self.slack_api_base, "../oauth/v2/authorize")

    @property
    def admin_ids(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.budget_bot_admins.split(",") if part.strip())

    @property
    def missing_scenario_credentials(self) -> list[str]:
        """The Scenario credential variables that are unset or blank, in their usual order."""
        secret = self.scenario_sdk_api_secret
        missing = []
        if not (self.scenario_sdk_api_key or "").strip():
            missing.append("SCENARIO_SDK_API_KEY")
        if secret is None or not secret.get_secret_value().strip():
            missing.append("SCENARIO_SDK_API_SECRET")
        return missing

    def require_scenario_credentials(self) -> None:
        """ConfigError naming each missing Scenario credential (SPEC §2: one line, status 2)."""
        missing = self.missing_scenario_credentials
        if missing:
            names = " and ".join(missing)
            verb = "are" if len(missing) > 1 else "is"
            raise ConfigError(
                f"{names} {verb} not set: Scenario credentials are required to read usage"
                " (set them in the environment or in .env)"
            )

    @property
    def slack_api_base(self) -> str:
        """SLACK_API_URL with the trailing slash slack_sdk expects."""
        url = str(self.slack_api_url)
        return url if url.endswith("/") else url + "/"

    @property
    def scenario_base(self) -> str:
        return str(self.scenario_base_url).rstrip("/")

    @property
    def scenario_app(self) -> str:
        return str(self.scenario_app_url).rstrip("/")


def load_settings(**overrides: object) -> Settings:
    """Build Settings once, turning pydantic's report into one readable line."""
    problems = []
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper() or "settings"
            problems.append(f"{name}: {error['msg']}")
    # Raised outside the handler: pydantic's error keeps the refused values (a key, a
    # token), so it must not travel along as this error's context.
    raise ConfigError("bad configuration: " + "; ".join(problems))
