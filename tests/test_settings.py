import pytest

from paytime_app.settings import DEV_SECRET_KEY, RunMode, SettingsError, load_settings


def test_settings_defaults_to_embedded_sqlite(settings_env):
    settings_env.delenv("DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings.is_sqlite
    assert settings.port == 3000
    assert settings.dev_mailbox_enabled


def test_settings_production_refuses_default_secret(settings_env):
    settings_env.setenv("PAYTIME_ENV", "production")
    settings_env.setenv("SECRET_KEY", DEV_SECRET_KEY)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "SECRET_KEY" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_settings_production_accepts_real_secrets(settings_env):
    settings_env.setenv("PAYTIME_ENV", "production")
    settings_env.setenv("SECRET_KEY", "x" * 48)
    settings_env.setenv("MOCK_WEBHOOK_SECRET", "y" * 48)
    settings = load_settings()
    assert settings.paytime_env is RunMode.PRODUCTION
    assert not settings.dev_mailbox_enabled


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://root@localhost/x"),
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("REDIS_URL", "localhost:6379"),
        ("BASE_URL", "example.com"),
        ("PAYTIME_ENV", "staging"),
    ],
)
def test_settings_malformed_value_names_the_variable(settings_env, variable, value):
    settings_env.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith("PayTime cannot start:")
    assert variable in message


def test_settings_postgres_url_uses_psycopg3(settings_env):
    settings_env.setenv("DATABASE_URL", "postgres://u@db:5432/paytime")
    assert load_settings().sqlalchemy_url == "postgresql+psycopg://u@db:5432/paytime"


def test_settings_empty_values_mean_unset(settings_env):
    settings_env.setenv("SECRET_KEY", "")
    settings_env.setenv("REDIS_URL", "")
    settings = load_settings()
    assert settings.secret_key == DEV_SECRET_KEY
    assert settings.redis_url is None
