"""Real object-storage servers for the publication tests: Azurite (Azure Blob) and moto (S3).

Azurite is the Azure Storage emulator from the npm registry, installed into
``tools/node_modules`` (``make node-tools``; ``.ci/run`` does it); moto's server mode is a Python
package of the lock file. Each server runs in its own process or thread on a free port for
the test session, and is stopped at its end. The publish code reaches them exactly as it
would reach Azure or AWS: an ``az://`` or ``s3://`` URL, credentials in the environment.
Without Azurite the Azure tests skip, unless ``REQUIRE_OBJECT_STORES=1`` (as in CI), when
they fail.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / "tools" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's documented development account (public, in Microsoft's docs): not a secret.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
STARTUP_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listened on port {port} within {STARTUP_SECONDS} s")


def _missing(what: str) -> None:
    if os.environ.get("REQUIRE_OBJECT_STORES") == "1":
        pytest.fail(f"REQUIRE_OBJECT_STORES=1 but {what}")
    pytest.skip(what)


@contextmanager
def azurite() -> Iterator[str]:
    """A running Azurite blob service; yields its connection string."""
    if not AZURITE.exists():
        _missing(f"Azurite is not installed at {AZURITE} (run `make node-tools`)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="hei-azurite-") as location:
        process = subprocess.Popen(
            [
                str(AZURITE),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(port),
                "--location",
                location,
                "--silent",
                "--skipApiVersionCheck",
                "--loose",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(port, process)
            yield (
                f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                f"AccountKey={AZURITE_KEY};"
                f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
            )
        finally:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def moto_s3() -> Iterator[str]:
    """A running moto S3 server; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        _wait_for(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
