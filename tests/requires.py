"""What a test needs from the machine: missing locally, the test is skipped; missing under
CI=true, it fails (CI must run every test, so a skip there would prove nothing)."""

from __future__ import annotations

import os

import pytest


def require(available: bool, missing: str) -> None:
    """Skip the calling test when `available` is false, or fail it when CI=true."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {missing}", pytrace=False)
    pytest.skip(missing)
