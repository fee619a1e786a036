"""What a slash command asks for: the typed requests the parsers return, and the values
they carry (scopes, channels, ranges). Frozen dataclasses; no Slack, Scenario or clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TypeAlias

from bot.budgets.types import DEFAULT_THRESHOLDS, PeriodKind, ScopeKind

MAX_LIMIT = Decimal(10) ** 12
MAX_SNOOZE = timedelta(days=90)
THRESHOLD_MIN, THRESHOLD_MAX = 1, 1000
# SQLite's INTEGER is signed 64-bit; a bigger ID can only be a typo.
MAX_ID = 2**63 - 1


# ---------------------------------------------------------------------------------------------
# Value types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScopeRef:
    """A scope or filter as the user wrote it, not yet resolved to a Scenario ID.

    ``text`` is the name, ID or email typed (``None`` only for the team). For a user given as
    a Slack @mention, ``slack_user_id`` holds the Slack user ID (resolve it through Slack,
    e.g. users.info → email) and ``text`` is only a label: the mention's name, else the ID.
    """

    kind: ScopeKind
    text: str | None = None
    slack_user_id: str | None = None

    def __post_init__(self) -> None:
        if (self.kind is ScopeKind.TEAM) != (self.text is None):
            raise ValueError("the team scope takes no name; every other scope needs one")
        if self.slack_user_id is not None and self.kind is not ScopeKind.USER:
            raise ValueError("only a user scope can be a Slack mention")

    @property
    def is_email(self) -> bool:
        return self.slack_user_id is None and self.text is not None and "@" in self.text[1:]

    def __str__(self) -> str:
        if self.text is None:
            return self.kind.value
        if self.slack_user_id is not None:
            return f"{self.kind.value}:<@{self.slack_user_id}>"
        shown = f'"{self.text}"' if any(c.isspace() for c in self.text) else self.text
        return f"{self.kind.value}:{shown}"


TEAM_REF = ScopeRef(ScopeKind.TEAM)


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """Where alerts or digests go: a Slack channel ID (from Slack's escaped `<#C…|name>`
    form), or only a name (plain `#name`, lower-cased, without `#`) to resolve later."""

    id: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.id is None and self.name is None:
            raise ValueError("a channel needs an ID or a name")

    def __str__(self) -> str:
        return f"<#{self.id}>" if self.id is not None else f"#{self.name}"


class RangePreset(StrEnum):
    """The named `/usage` ranges (SPEC §4 `RANGE`)."""

    LAST_1H = "1h"
    LAST_24H = "24h"
    LAST_3D = "3d"
    LAST_7D = "7d"
    LAST_31D = "31d"
    TODAY = "today"
    YESTERDAY = "yesterday"
    THIS_WEEK = "this-week"
    THIS_MONTH = "this-month"

    @property
    def rolling(self) -> timedelta | None:
        """The length of a range that ends now, or ``None`` for calendar ranges."""
        return _ROLLING_RANGES.get(self)


_ROLLING_RANGES = {
    RangePreset.LAST_1H: timedelta(hours=1),
    RangePreset.LAST_24H: timedelta(hours=24),
    RangePreset.LAST_3D: timedelta(days=3),
    RangePreset.LAST_7D: timedelta(days=7),
    RangePreset.LAST_31D: timedelta(days=31),
}


@dataclass(frozen=True, slots=True)
class DateRange:
    """Calendar days from ``start`` to ``end``, both included (in the workspace timezone)."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def end_exclusive(self) -> date:
        """The first day after the range: the range is ``[start, end_exclusive)``."""
        return self.end + timedelta(days=1)

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


UsageRange: TypeAlias = RangePreset | DateRange


@dataclass(frozen=True, slots=True)
class GrammarError:
    """What was wrong with the command (mrkdwn) and the right form of it (mrkdwn)."""

    message: str
    usage: str

    @property
    def text(self) -> str:
        """Message and usage together, ready for an ephemeral reply."""
        return f"{self.message}\n*Usage:* {self.usage}"


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsageRequest:
    """`/usage`: spend over ``range``, optionally narrowed to a project, user and/or model."""

    range: UsageRange = RangePreset.LAST_24H
    project: ScopeRef | None = None
    user: ScopeRef | None = None
    model: ScopeRef | None = None
    public: bool = False


@dataclass(frozen=True, slots=True)
class BudgetList:
    public: bool = False


@dataclass(frozen=True, slots=True)
class BudgetHelp:
    """`help [topic]`; ``topic`` is a subcommand name or ``"usage"`` (see :func:`help_text`)."""

    topic: str | None = None
    public: bool = False


@dataclass(frozen=True, slots=True)
class OpenBudgetModal:
    """`add` with no options (``budget_id`` is None), or `edit <id>` with none (filled in)."""

    budget_id: int | None = None
    public: bool = False


@dataclass(frozen=True, slots=True)
class BudgetAdd:
    """``channel`` None means the channel the command was typed in."""

    limit: Decimal
    period: PeriodKind
    scope: ScopeRef = TEAM_REF
    channel: ChannelRef | None = None
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    forecast: bool = False
    public: bool = False


@dataclass(frozen=True, slots=True)
class BudgetEdit:
    """Only the fields that are not ``None`` change; at least one of them is set."""

    budget_id: int
    limit: Decimal | None = None
    period: PeriodKind | None = None
    scope: ScopeRef | None = None
    channel: ChannelRef | None = None
    thresholds: tuple[int, ...] | None = None
    forecast: bool | None = None
    public: bool = False


@dataclass(frozen=True, slots=True)
class BudgetRemove:
    budget_id: int
    public: bool = False


@dataclass(frozen=True, slots=True)
class BudgetTest:
    """`test <id>`: a sample alert with today's figures, posted to the budget's channel."""

    budget_id: int
    public: bool = False


@dataclass(frozen=True, slots=True)
class BudgetSnooze:
    """``duration`` None means until the budget's current period ends (`until-reset`)."""

    budget_id: int
    duration: timedelta | None
    public: bool = False

    @property
    def until_reset(self) -> bool:
        return self.duration is None


@dataclass(frozen=True, slots=True)
class BudgetUnsnooze:
    budget_id: int
    public: bool = False


@dataclass(frozen=True, slots=True)
class BudgetDigest:
    """``at`` is the local time of the digest; None turns the digest off.

    ``channel`` None means the channel the command was typed in. ``cadence`` is daily,
    weekly or monthly; ``weekday`` (0 = Monday) is set exactly when it is weekly."""

    at: time | None
    channel: ChannelRef | None = None
    public: bool = False
    quiet: bool = False  # on a span without spend, post nothing instead of one line
    cadence: PeriodKind = PeriodKind.DAILY
    weekday: int | None = None

    @property
    def off(self) -> bool:
        return self.at is None


@dataclass(frozen=True, slots=True)
class BudgetTimezone:
    """``name`` is a canonical IANA key that :class:`zoneinfo.ZoneInfo` accepts."""

    name: str
    public: bool = False


@dataclass(frozen=True, slots=True)
class BudgetHistory:
    budget_id: int | None = None
    public: bool = False


@dataclass(frozen=True, slots=True)
class BudgetWatch:
    """`watch [#channel] [low|normal|high]`, or `watch off`. ``sensitivity`` None keeps the
    watch's (or, turning it on, `normal`); ``channel`` None is where the command was typed."""

    off: bool = False
    channel: ChannelRef | None = None
    sensitivity: str | None = None
    public: bool = False


@dataclass(frozen=True, slots=True)
class BudgetConnect:
    """`connect`: the form for this workspace's Scenario credentials."""

    public: bool = False


@dataclass(frozen=True, slots=True)
class BudgetDisconnect:
    public: bool = False


BudgetRequest: TypeAlias = (
    BudgetList
    | BudgetHelp
    | OpenBudgetModal
    | BudgetAdd
    | BudgetEdit
    | BudgetRemove
    | BudgetSnooze
    | BudgetUnsnooze
    | BudgetDigest
    | BudgetTimezone
    | BudgetHistory
    | BudgetConnect
    | BudgetDisconnect
    | BudgetWatch
    | BudgetTest
)
