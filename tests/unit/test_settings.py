import base64
import os
import secrets
import subprocess
import sys

import pytest
from pydantic import ValidationError

from hei import cli
from transforms.config.settings import Settings

HOW_TO_MAKE_ONE = 'python -c "import secrets; print(secrets.token_hex(32))"'


def test_production_refuses_to_run_without_a_pseudonym_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError, match="HEI_PSEUDONYM_KEY must be set in production"):
        Settings(environment="production")


@pytest.mark.parametrize(
    "key",
    [
        "k",
        secrets.token_hex(16),
        secrets.token_urlsafe(16),
        "0" * 64,
        "deadbeef" * 8,
        "correct horse battery staple, correct horse battery staple",
    ],
    ids=["one-character", "16-bytes-hex", "16-bytes-base64", "zeros", "repeated", "passphrase"],
)
def test_production_refuses_a_key_without_32_random_bytes_and_says_how_to_make_one(
    tmp_path, monkeypatch, key
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError, match="too weak for production") as refused:
        Settings(environment="production", pseudonym_key=key)
    assert HOW_TO_MAKE_ONE in str(refused.value)


@pytest.mark.parametrize(
    "key",
    [
        secrets.token_hex(32),
        secrets.token_hex(32).upper(),
        secrets.token_urlsafe(32),
        base64.b64encode(os.urandom(32)).decode(),
    ],
    ids=["hex", "upper-case-hex", "base64url", "base64"],
)
def test_production_accepts_32_random_bytes_as_hex_or_base64_and_uses_the_text_as_it_is(
    tmp_path, monkeypatch, key
):
    monkeypatch.chdir(tmp_path)
    settings = Settings(environment="production", pseudonym_key=key)
    assert settings.pseudonym_secret == key.encode()  # unchanged: earlier pseudonyms still link


def test_development_accepts_any_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Settings(pseudonym_key="test-key-not-secret").pseudonym_secret == b"test-key-not-secret"


@pytest.mark.parametrize("key", [None, "short-secret-key"], ids=["no-key", "weak-key"])
def test_a_settings_error_quotes_neither_the_key_nor_the_warehouse_password(
    tmp_path, monkeypatch, key
):
    monkeypatch.chdir(tmp_path)
    url = "postgresql+psycopg://hei@db/warehouse?password=hunter2-password"
    with pytest.raises(ValidationError) as refused:
        Settings(
            environment="production", warehouse_url=url, **({"pseudonym_key": key} if key else {})
        )
    assert "hunter2" not in str(refused.value)
    assert "short-secret-key" not in str(refused.value)


def test_development_key_is_generated_once_private_and_reused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = Settings(var_dir=tmp_path / "var")
    key = first.pseudonym_secret
    assert first.uses_development_key
    assert (tmp_path / "var" / "pseudonym.key").stat().st_mode & 0o077 == 0
    assert Settings(var_dir=tmp_path / "var").pseudonym_secret == key
    assert len(key) == 64 and not (tmp_path / "var" / "pseudonym.key").read_text().endswith("\n")


def test_development_key_is_never_readable_by_others_not_even_before_a_chmod(tmp_path, monkeypatch):
    """Written and then chmod-ed, the key sat readable by everyone in between."""
    modes: list[int] = []
    chmod = os.chmod

    def watched_chmod(path, mode, *args, **kwargs):  # the mode the file had until now
        modes.append(os.stat(path).st_mode & 0o777)
        return chmod(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "chmod", watched_chmod)
    monkeypatch.chdir(tmp_path)
    umask = os.umask(0o022)  # the usual default: new files readable by everyone
    try:
        Settings(var_dir=tmp_path / "var").pseudonym_secret  # noqa: B018 - creates the key
    finally:
        os.umask(umask)
    modes.append((tmp_path / "var" / "pseudonym.key").stat().st_mode & 0o777)
    assert all(mode & 0o077 == 0 for mode in modes), [oct(m) for m in modes]


# A first task: it waits, once it has decided to create the key, until the other has too.
FIRST_TASK = """
import os, pathlib, secrets, sys, time
from hei import cli
from transforms.config.settings import Settings

token_hex, meeting = secrets.token_hex, pathlib.Path(sys.argv[2])

def token_hex_when_all_have_decided(n):
    if n == 32:
        (meeting / str(os.getpid())).touch()
        while len(list(meeting.iterdir())) < 2:
            time.sleep(0.01)
    return token_hex(n)

secrets.token_hex = token_hex_when_all_have_decided
print(Settings(var_dir=sys.argv[1]).pseudonym_secret.decode())
"""


def test_processes_starting_at_once_share_one_development_key(tmp_path):
    """Tasks running for the first time at the same moment must not pseudonymise with
    different keys (nor read a half-written one)."""
    var, meeting = tmp_path / "var", tmp_path / "meeting"
    meeting.mkdir()
    tasks = [
        subprocess.Popen(
            [sys.executable, "-c", FIRST_TASK, str(var), str(meeting)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    keys = {task.communicate(timeout=60)[0].strip() for task in tasks}
    assert keys == {(var / "pseudonym.key").read_text()}
    assert [p.name for p in var.iterdir()] == ["pseudonym.key"]  # no temporary file left


def test_settings_come_from_hei_environment_variables(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEI_WAREHOUSE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("HEI_PSEUDONYM_KEY", "k")
    settings = Settings()
    assert settings.warehouse_url == "postgresql+psycopg://u@h/db"
    assert settings.pseudonym_secret == b"k" and not settings.uses_development_key


def test_until_must_be_a_month(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--until", "2025-13"])
    assert exited.value.code == 2
    assert "'2025-13' is not a month: write YYYY-MM" in capsys.readouterr().err


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


def test_the_expected_start_of_deliveries_is_a_month_and_blank_means_unset(tmp_path, monkeypatch):
    """Compose passes an unset ``HEI_DELIVERIES_EXPECTED_FROM`` as an empty string."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEI_DELIVERIES_EXPECTED_FROM", "")
    assert Settings().deliveries_expected_from is None
    assert Settings(deliveries_expected_from="2025-04").deliveries_expected_from == "2025-04"
    with pytest.raises(ValidationError, match="deliveries_expected_from"):
        Settings(deliveries_expected_from="2025-13")
