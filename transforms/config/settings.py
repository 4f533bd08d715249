"""The one typed settings object.

Every path, URL and secret the pipeline uses comes from here: environment variables with the
prefix ``HEI_`` (or a ``.env`` file in the working directory). The same object is built inside
Airflow tasks and by the ``hei`` command line, so a scheduler and a laptop run with identical
configuration. Nothing reads settings at import time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from transforms.core.redaction import url_secrets

DEV_KEY_FILE = "pseudonym.key"
KEY_BYTES = 32
MAKE_A_KEY = 'python -c "import secrets; print(secrets.token_hex(32))"'
# A random key of 32 bytes uses nearly every hex digit (all but a 1e-12 chance of fewer than
# 10 of them); fewer means a placeholder such as 64 zeros or "deadbeef" repeated.
DISTINCT_CHARACTERS = 10


class Settings(BaseSettings):
    """Run-time configuration of the pipeline (environment variables ``HEI_*``)."""

    # Validation errors would otherwise quote their input: the key, or a URL with a password.
    model_config = SettingsConfigDict(
        env_prefix="HEI_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    environment: Literal["development", "production"] = "development"
    var_dir: Path = Path("var")
    landing_dir: Path = Path("var/landing")
    warehouse_url: str = "duckdb:///var/warehouse.duckdb"
    # Where releases are published: a folder or an fsspec URL (az://, abfs://, s3://);
    # by default ``<var_dir>/publish``.
    publish_url: str = ""
    # How many complete releases to keep (None: all); the latest is always kept.
    publish_keep: int | None = Field(default=None, ge=1)
    # Where the assurance reports go (``<month>/assurance_report.html`` and ``.pdf``); by
    # default ``<var_dir>/reports``.
    reports_dir: Path | None = None
    pseudonym_key: SecretStr | None = None
    alert_webhook_url: str | None = None
    # The first month (YYYY-MM) every source must deliver; by default each source's first
    # delivery in audit.file_loads (see transforms.ops.deliveries).
    deliveries_expected_from: str | None = Field(default=None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    completeness_action: Literal["warn", "fail"] = "warn"
    # A file modified less than this many seconds ago may still be arriving: it is left
    # (audit status in_progress) for the next run. Small, so `hei synth && hei run` loads.
    settle_seconds: float = Field(default=2.0, ge=0)
    # Limits on what a compressed delivery may expand to (gzip bombs).
    max_decompressed_bytes: int = Field(default=8 << 30, gt=0)
    max_compression_ratio: float = Field(default=100.0, gt=1)

    @field_validator("deliveries_expected_from", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """Compose passes an unset variable as an empty string."""
        return value or None

    @model_validator(mode="after")
    def _outputs_beside_the_rest(self) -> Settings:
        if not self.publish_url:
            self.publish_url = str(self.var_dir / "publish")
        if self.reports_dir is None:
            self.reports_dir = self.var_dir / "reports"
        return self

    @model_validator(mode="after")
    def _production_needs_a_strong_key(self) -> Settings:
        if self.environment != "production":
            return self
        if not self.pseudonym_key:
            raise ValueError(
                "HEI_PSEUDONYM_KEY must be set in production: the pseudonyms of NHS numbers "
                "depend on it, and a generated key would unlink every earlier load. Make one "
                f"with: {MAKE_A_KEY}"
            )
        problem = key_weakness(self.pseudonym_key.get_secret_value())
        if problem:
            raise ValueError(
                f"HEI_PSEUDONYM_KEY is too weak for production: {problem}. It must carry at "
                f"least {KEY_BYTES} random bytes, written as hex (64 digits or more) or base64 "
                f"(43 characters or more). Make one with: {MAKE_A_KEY}"
            )
        return self

    @cached_property
    def pseudonym_secret(self) -> bytes:
        """The HMAC key; outside production a key is generated once and kept under ``var_dir``.

        The generated key is stable across runs so that the same NHS number always maps to
        the same ``person_id`` in a development warehouse.
        """
        if self.pseudonym_key:
            return self.pseudonym_key.get_secret_value().encode()
        path = self.var_dir / DEV_KEY_FILE
        if not path.exists():
            _create_private(path, secrets.token_hex(KEY_BYTES))
        return path.read_text().strip().encode()

    @property
    def uses_development_key(self) -> bool:
        return not self.pseudonym_key

    def key_fingerprint(self) -> str:
        """A short, non-reversible label of the key, so runs can say which key they used."""
        return hashlib.sha256(self.pseudonym_secret).hexdigest()[:8]

    @property
    def is_duckdb(self) -> bool:
        return self.warehouse_url.startswith("duckdb")

    def secret_values(self) -> list[str]:
        """Values never to be printed: the warehouse password, the key, the webhook URL."""
        key = [self.pseudonym_key.get_secret_value()] if self.pseudonym_key else []
        webhook = [self.alert_webhook_url] if self.alert_webhook_url else []
        return [*url_secrets(self.warehouse_url), *key, *webhook]


SECRET_SETTINGS = ("pseudonym_key", "alert_webhook_url")
"""Settings whose value is a secret whole; a warehouse or publish URL is one when it holds a
password or a secret query value (an S3 key, an Azure SAS token)."""


def secret_settings(given: dict[str, object]) -> list[str]:
    """Which of the ``given`` settings hold a secret.

    A run's configuration (where ``hei run`` passes its options) is stored in Airflow's
    metadata database and copied into every OpenLineage event of the run, so it must hold
    none: secrets come from the deployment's environment.
    """
    named = [name for name in SECRET_SETTINGS if given.get(name)]
    urls = {name: str(given[name]) for name in ("warehouse_url", "publish_url") if given.get(name)}
    return [*named, *(name for name, url in urls.items() if _url_holds_secret(name, url))]


def _url_holds_secret(name: str, url: str) -> bool:
    """A password or secret query value in the URL (``url_secrets``); a publish target that
    is a folder holds none (a warehouse URL that cannot be parsed is taken to be secret)."""
    if name == "publish_url" and "://" not in url:
        return False
    return bool(url_secrets(url))


def key_weakness(key: str) -> str | None:
    """Why ``key`` cannot hold 32 random bytes, or None if it can.

    The key is used as the text it is (its UTF-8 bytes are the HMAC key, as before this check
    existed), so a key made earlier keeps its pseudonyms; what is checked is that the text is
    hex or base64 long enough to carry 32 random bytes.
    """
    if re.fullmatch(r"[0-9a-fA-F]+", key):
        carried = len(key) // 2
    else:
        standard = key.replace("-", "+").replace("_", "/")  # base64url too
        try:
            carried = len(base64.b64decode(standard + "=" * (-len(key) % 4), validate=True))
        except binascii.Error:
            return "it is neither hex nor base64"
    if carried < KEY_BYTES:
        return f"it carries {carried} bytes"
    if len(set(key.lower())) < DISTINCT_CHARACTERS:
        return f"it uses only {len(set(key.lower()))} different characters, so it is not random"
    return None


def _create_private(path: Path, text: str) -> None:
    """Write a new file readable by its owner only, from the moment it exists.

    The text goes into a private temporary file that is then linked into place, so a process
    starting at the same moment never reads a half-written key: it either finds the whole file
    or loses the race to create it and reads the winner's.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process made the key first: use theirs
    finally:
        temporary.unlink()
