"""Suite-wide fixtures."""

from __future__ import annotations

import os

import pytest

_OUR_PREFIXES = ("SLACK_", "SCENARIO_", "BUDGET_BOT_")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings and Bolt read the environment by themselves; a developer's real tokens
    must never leak into a test, and no test may depend on them."""
    for name in list(os.environ):
        if name.startswith(_OUR_PREFIXES) or name == "PORT":
            monkeypatch.delenv(name)
