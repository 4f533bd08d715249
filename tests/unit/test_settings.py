import pytest
from pydantic import ValidationError

from transforms.settings import Settings


def test_production_refuses_to_run_without_a_pseudonym_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError, match="HEI_PSEUDONYM_KEY must be set in production"):
        Settings(environment="production")


def test_development_key_is_generated_once_private_and_reused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = Settings(var_dir=tmp_path / "var")
    key = first.pseudonym_secret
    assert first.uses_development_key
    assert (tmp_path / "var" / "pseudonym.key").stat().st_mode & 0o077 == 0
    assert Settings(var_dir=tmp_path / "var").pseudonym_secret == key


def test_settings_come_from_hei_environment_variables(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEI_WAREHOUSE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("HEI_PSEUDONYM_KEY", "k")
    settings = Settings()
    assert settings.warehouse_url == "postgresql+psycopg://u@h/db"
    assert settings.pseudonym_secret == b"k" and not settings.uses_development_key


def test_until_must_be_a_month(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError):
        Settings(until="2025-13")


def test_landing_safety_limits_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEI_SETTLE_SECONDS", "300")
    monkeypatch.setenv("HEI_MAX_DECOMPRESSED_BYTES", "1000000")
    monkeypatch.setenv("HEI_MAX_COMPRESSION_RATIO", "50")
    settings = Settings()
    assert (settings.settle_seconds, settings.max_decompressed_bytes) == (300, 1_000_000)
    assert settings.max_compression_ratio == 50
    with pytest.raises(ValidationError):
        Settings(settle_seconds=-1)
