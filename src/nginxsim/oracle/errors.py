"""What can go wrong in the harness itself (as opposed to what nginx answers)."""

from __future__ import annotations


class OracleError(Exception):
    """The harness could not do its job: no nginx binary, a timeout, a TLS failure..."""


class NginxStartError(OracleError):
    """nginx refused to start; the message carries its stderr and error log."""

    def __init__(self, message: str, stderr: str, error_log: str) -> None:
        parts = [message]
        if stderr.strip():
            parts.append("nginx stderr:\n" + stderr.rstrip())
        if error_log.strip():
            parts.append("nginx error.log:\n" + error_log.rstrip())
        super().__init__("\n".join(parts))
        self.stderr, self.error_log = stderr, error_log
