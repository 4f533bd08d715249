"""The one typed settings object.

Every path, URL and secret the pipeline uses comes from here: environment variables with the
prefix ``HEI_`` (or a ``.env`` file in the working directory). The same object is built inside
Airflow tasks and by the ``hei`` command line, so a scheduler and a laptop run with identical
configuration. Nothing reads settings at import time.
"""

from __future__ import annotations

import hashlib
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_KEY_FILE = "pseudonym.key"


class Settings(BaseSettings):
    """Run-time configuration of the pipeline (environment variables ``HEI_*``)."""

    model_config = SettingsConfigDict(env_prefix="HEI_", env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    var_dir: Path = Path("var")
    landing_dir: Path = Path("var/landing")
    warehouse_url: str = "duckdb:///var/warehouse.duckdb"
    publish_dir: Path = Path("var/publish")
    reports_dir: Path = Path("var/reports")
    until: str | None = Field(default=None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    pseudonym_key: SecretStr | None = None
    alert_webhook_url: str | None = None
    completeness_action: Literal["warn", "fail"] = "warn"
    # A file modified less than this many seconds ago may still be arriving: it is left
    # (audit status in_progress) for the next run. Small, so `hei synth && hei run` loads.
    settle_seconds: float = Field(default=2.0, ge=0)
    # Limits on what a compressed delivery may expand to (gzip bombs).
    max_decompressed_bytes: int = Field(default=8 << 30, gt=0)
    max_compression_ratio: float = Field(default=100.0, gt=1)

    @model_validator(mode="after")
    def _production_needs_a_key(self) -> Settings:
        if self.environment == "production" and not self.pseudonym_key:
            raise ValueError(
                "HEI_PSEUDONYM_KEY must be set in production: the pseudonyms of NHS numbers "
                "depend on it, and a generated key would unlink every earlier load."
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
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
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
