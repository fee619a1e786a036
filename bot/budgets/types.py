"""Plain value types shared by the budget core, the store and the Slack grammar."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PeriodKind(StrEnum):
    """How a budget's period is cut (SPEC §4 `PERIOD`)."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    BILLING = "billing"
    ROLLING_24H = "24h"
    ROLLING_7D = "7d"
    ROLLING_30D = "30d"

    @property
    def is_rolling(self) -> bool:
        return self in (PeriodKind.ROLLING_24H, PeriodKind.ROLLING_7D, PeriodKind.ROLLING_30D)


class ScopeKind(StrEnum):
    """What a budget counts (SPEC §4 `SCOPE`)."""

    TEAM = "team"
    PROJECT = "project"
    USER = "user"
    KEY = "key"
    MODEL = "model"


@dataclass(frozen=True, slots=True)
class Scope:
    """A budget's scope: a kind and, except for the team, the ID it names."""

    kind: ScopeKind
    ref: str | None = None

    def __post_init__(self) -> None:
        if (self.kind is ScopeKind.TEAM) != (self.ref is None):
            raise ValueError("the team scope takes no ID; every other scope needs one")

    def __str__(self) -> str:
        return self.kind.value if self.ref is None else f"{self.kind.value}:{self.ref}"


TEAM = Scope(ScopeKind.TEAM)
DEFAULT_THRESHOLDS: tuple[int, ...] = (50, 80, 100)
