"""A throw-away self-signed certificate, for `listen ... ssl` and TLS upstreams (echo servers).

Made with the `openssl` command: the project does not depend on a crypto package, and where
nginx is installed openssl almost always is too.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from .errors import OracleError

SUBJECT = "nginxsim-oracle"


class SelfSigned:
    """Calling it returns (cert, key) paths in `directory`, made on the first call only."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._paths: tuple[str, str] | None = None

    def __call__(self) -> tuple[str, str]:
        if self._paths is None:
            self._paths = self_signed(self.directory)
        return self._paths


def self_signed(directory: str) -> tuple[str, str]:
    """Write cert.pem and key.pem (EC P-256) into `directory`; return their paths."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise OracleError("a TLS certificate is needed (ssl listen or TLS upstream) but `openssl` is not on PATH")
    os.makedirs(directory, exist_ok=True)
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    done = subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            f"/CN={SUBJECT}",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise OracleError(f"openssl could not make a certificate: {done.stderr.strip()}")
    return cert, key
