from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings


def test_defaults_match_the_spec() -> None:
    settings = load_settings(_env_file=None)
    assert settings.slack_api_base == "https://slack.com/api/"
    assert settings.scenario_base == "https://api.cloud.scenario.com/v1"
    assert settings.scenario_app == "https://app.scenario.com"
    assert settings.budget_bot_db == Path("budget-bot.db")
    assert settings.budget_bot_check_interval == 300
    assert settings.budget_bot_timezone == "UTC"
    assert settings.port == 3000
    assert settings.admin_ids == frozenset()


def test_environment_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("BUDGET_BOT_TIMEZONE=Europe/Paris\nSCENARIO_TEAM_ID=team_from_file\n")
    monkeypatch.setenv("SCENARIO_TEAM_ID", "team_from_env")
    monkeypatch.setenv("BUDGET_BOT_ADMINS", "U1, U2,,U3 ")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9999/api")
    settings = load_settings(_env_file=env_file)
    assert settings.budget_bot_timezone == "Europe/Paris"
    assert settings.scenario_team_id == "team_from_env"
    assert settings.admin_ids == {"U1", "U2", "U3"}
    assert settings.slack_api_base == "http://127.0.0.1:9999/api/"


def test_secrets_are_hidden_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENARIO_SDK_API_SECRET", "test-secret-value")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token-value")
    settings = load_settings(_env_file=None)
    assert "test-secret-value" not in repr(settings)
    assert "xoxb-test-token-value" not in repr(settings)
    assert settings.scenario_sdk_api_secret is not None
    assert settings.scenario_sdk_api_secret.get_secret_value() == "test-secret-value"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SCENARIO_BASE_URL", "not a url", "SCENARIO_BASE_URL"),
        ("BUDGET_BOT_TIMEZONE", "Mars/Olympus", "unknown IANA timezone"),
        ("BUDGET_BOT_CHECK_INTERVAL", "often", "BUDGET_BOT_CHECK_INTERVAL"),
        ("BUDGET_BOT_CHECK_INTERVAL", "1", "BUDGET_BOT_CHECK_INTERVAL"),
        ("PORT", "70000", "PORT"),
    ],
)
def test_bad_values_give_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_secret_values_never_appear_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENARIO_SDK_API_SECRET", "test-secret-value")
    monkeypatch.setenv("PORT", "not-a-port")
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    assert "test-secret-value" not in str(caught.value)
