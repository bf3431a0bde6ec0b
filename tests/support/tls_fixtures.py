"""A throw-away self-signed certificate for the TLS tests (client and security suites).

Made once per session with the system's ``openssl``, for ``127.0.0.1`` only.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

__all__ = ["tls_cert"]


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(certificate, private key) for a TLS server on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert, key
