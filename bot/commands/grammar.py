"""The slash-command grammar: the text after `/usage` or `/budget` in, a typed request out.

Pure: no Slack, no Scenario, no clock. :func:`parse_usage` and :func:`parse_budget` return a
frozen request dataclass or a :class:`GrammarError` (what was wrong, with the offending token
quoted, and the right form of the command). They never raise.

Decisions worth knowing (SPEC §4 is the contract):

- Limits are :class:`~decimal.Decimal`, so `12.5k` and `1.1k` are exactly 12500 and 1100 CU
  (a float would make `1.1k` 1100.0000000000002). They are positive, at most 1e12 CU, with at
  most two decimals once the `k`/`m` suffix is applied.
- A date range includes both ends: `2026-11-01..2026-11-30` is the whole of November (30 days)
  and `2026-11-05..2026-11-05` is that one day. "At most 120 days" counts both ends.
  :attr:`DateRange.end_exclusive` gives the half-open upper bound.
- Names and IDs (projects, users, keys, models, `#channel` names) are kept as typed, after
  unwrapping Slack's escaping; resolving them is the caller's job, with Scenario and Slack.
- Every request carries ``public`` (SPEC §4: replies are ephemeral unless the user adds it).
- Unknown words, duplicates (`5k … 6k`, `public public`) and contradictions
  (`forecast no-forecast`) are errors rather than guesses.
- Keywords are case-insensitive and only count when typed bare: `"public"` in quotes is a name.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TypeAlias

from bot.budgets.types import DEFAULT_THRESHOLDS, PeriodKind, ScopeKind
from bot.timezones import UnknownTimezone, validate_timezone

__all__ = [
    "HELP_TEXT",
    "MAX_LIMIT",
    "MAX_RANGE_DAYS",
    "MAX_SNOOZE",
    "SUBCOMMANDS",
    "TEAM_REF",
    "BudgetAdd",
    "BudgetDigest",
    "BudgetEdit",
    "BudgetHelp",
    "BudgetHistory",
    "BudgetList",
    "BudgetRemove",
    "BudgetRequest",
    "BudgetSnooze",
    "BudgetTimezone",
    "BudgetUnsnooze",
    "ChannelRef",
    "DateRange",
    "GrammarError",
    "OpenBudgetModal",
    "RangePreset",
    "ScopeRef",
    "UsageRange",
    "UsageRequest",
    "help_text",
    "parse_budget",
    "parse_limit",
    "parse_thresholds",
    "parse_usage",
    "usage_for",
]

MAX_LIMIT = Decimal(10) ** 12
MAX_RANGE_DAYS = 120
MAX_SNOOZE = timedelta(days=90)
THRESHOLD_MIN, THRESHOLD_MAX = 1, 1000
# SQLite's INTEGER is signed 64-bit; a bigger ID can only be a typo.
_MAX_ID = 2**63 - 1


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
    """``at`` is the local time of the daily digest; None turns the digest off.

    ``channel`` None means the channel the command was typed in."""

    at: time | None
    channel: ChannelRef | None = None
    public: bool = False
    quiet: bool = False  # on a day without spend, post nothing instead of one line

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
)


# ---------------------------------------------------------------------------------------------
# Usage strings and help
# ---------------------------------------------------------------------------------------------

_USAGE_USAGE = (
    "`/usage [project <name|id>] [user <@mention|email|id>] [model <name|id>] [RANGE] [public]`"
    " — RANGE is `1h`, `24h` (default), `3d`, `7d`, `31d`, `today`, `yesterday`, `this-week`,"
    ' `this-month` or `YYYY-MM-DD..YYYY-MM-DD` — e.g. `/usage project "Game Art" 7d`'
)
_OPTIONS = "[SCOPE] [#channel] [at 50,80,100] [forecast]"
_BUDGET_USAGES: dict[str, str] = {
    "list": "`/budget list [public]`",
    "add": f"`/budget add <LIMIT> <PERIOD> {_OPTIONS}` — e.g."
    " `/budget add 12k monthly project:Marketing #gen-ai-spend at 50,90,100 forecast`",
    "edit": "`/budget edit <id> [LIMIT] [PERIOD] [SCOPE] [#channel] [at 50,80,100]"
    " [forecast|no-forecast]` (only what you give changes; `/budget edit <id>` alone opens the"
    " form) — e.g. `/budget edit 3 15k at 80,100`",
    "remove": "`/budget remove <id>` — e.g. `/budget remove 3`",
    "snooze": "`/budget snooze <id> <DURATION>` — DURATION is like `30m`, `4h`, `1d`, `1h30m`"
    " (at most 90 days) or `until-reset` — e.g. `/budget snooze 3 4h`",
    "unsnooze": "`/budget unsnooze <id>` — e.g. `/budget unsnooze 3`",
    "digest": "`/budget digest <HH:MM> [#channel] [quiet]` or `/budget digest off [#channel]`"
    " — `quiet` skips days without spend — e.g. `/budget digest 09:00 #gen-ai-spend`",
    "timezone": "`/budget timezone <IANA name>` — e.g. `/budget timezone Europe/Paris`",
    "history": "`/budget history [id]` — e.g. `/budget history 3`",
    "help": "`/budget help [subcommand]`",
}
SUBCOMMANDS: tuple[str, ...] = tuple(_BUDGET_USAGES)
_BUDGET_OVERVIEW = (
    "`/budget <subcommand>` — one of " + ", ".join(f"`{s}`" for s in SUBCOMMANDS) + "."
    " Try `/budget help`."
)
# Words people reach for that difflib would not match to the real subcommand.
_SYNONYMS = {
    "ls": "list",
    "show": "list",
    "new": "add",
    "create": "add",
    "set": "add",
    "update": "edit",
    "change": "edit",
    "modify": "edit",
    "delete": "remove",
    "del": "remove",
    "rm": "remove",
    "mute": "snooze",
    "unmute": "unsnooze",
    "resume": "unsnooze",
    "tz": "timezone",
    "log": "history",
    "audit": "history",
    "alerts": "history",
    "?": "help",
}


def usage_for(subcommand: str | None) -> str:
    """The usage line of a `/budget` subcommand, `"usage"` for `/usage`, or the overview."""
    if subcommand == "usage":
        return _USAGE_USAGE
    return _BUDGET_USAGES.get(subcommand or "", _BUDGET_OVERVIEW)


HELP_TEXT = f"""*Scenario Budget Bot* — replies are only visible to you unless you add `public`.

*See spend*
• {_USAGE_USAGE}
  Quote names with spaces: `project "Game Art"`. More: `/usage user @ana 7d`, \
`/usage model "Flux Dev" 2026-11-01..2026-11-30` (both dates included, up to 120 days).

*Budgets*
• {_BUDGET_USAGES["list"]} — every budget with spend, % used, forecast and state (default)
• {_BUDGET_USAGES["add"]}
  `/budget add` alone opens a form.
• {_BUDGET_USAGES["edit"]}
• {_BUDGET_USAGES["remove"]} (asks for confirmation)
• {_BUDGET_USAGES["snooze"]}
• {_BUDGET_USAGES["unsnooze"]}
• {_BUDGET_USAGES["digest"]}
• {_BUDGET_USAGES["timezone"]}
• {_BUDGET_USAGES["history"]} — recent alerts and changes
• {_BUDGET_USAGES["help"]}

*Pieces*
• `LIMIT` — CU, a positive number: `5000`, `12.5k`, `1,500`, `2m`
• `PERIOD` — `daily`, `weekly`, `monthly` (calendar, workspace timezone), `billing` \
(Scenario's plan period), or rolling `24h`, `7d`, `30d`
• `SCOPE` — `team` (default), `project:<name|id>`, `user:<email|id|@mention>`, \
`key:<name|id>`, `model:<name|id>`; quote spaces: `project:"Game Art"`
• `#channel` — where alerts go (default: this channel)
• `at 50,80,100` — alert thresholds in % of the limit, 1–1000 (default `50,80,100`)
• `forecast` — also alert once when the period is projected to end over the limit \
(`no-forecast` turns it off in `edit`)
• Budget IDs are the plain numbers shown by `/budget list` (`3`, not `#3`).
Changing budgets is for workspace admins and the bot's admins."""


def help_text(topic: str | None = None) -> str:
    """The whole grammar (mrkdwn), or one subcommand's usage when ``topic`` names one."""
    if topic is None:
        return HELP_TEXT
    return f"*Usage:* {usage_for(topic)}"


# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------

# Slack turns straight quotes into curly ones unless the user disabled smart quotes.
_QUOTES = '"“”'


class _Problem(Exception):
    """Internal: aborts a parse with a user-facing message; never leaves this module."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class _Token:
    raw: str  # as received: keywords are matched on it, and errors quote it
    value: str  # with quote marks removed: what names are read from

    @property
    def word(self) -> str:
        return self.raw.casefold()


def _tokenize(text: str) -> list[_Token]:
    """Split on whitespace, keeping quoted runs and Slack's `<…>` escapes in one token."""
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start, parts = i, []
        while i < n and not text[i].isspace():
            ch = text[i]
            if ch in _QUOTES:
                end = next((j for j in range(i + 1, n) if text[j] in _QUOTES), -1)
                if end < 0:
                    raise _Problem(
                        f"The quote in {_show(text[start:])} is never closed — "
                        'put the name between two quotes, like `"Game Art"`.'
                    )
                parts.append(text[i + 1 : end])
                i = end + 1
            elif ch == "<" and (end := text.find(">", i)) >= 0:
                # Slack escapes what users type, so a raw `<` always opens one of its
                # `<@U…>`, `<#C…>` or `<mailto:…>` forms, which may contain spaces.
                parts.append(text[i : end + 1])
                i = end + 1
            else:
                parts.append(ch)
                i += 1
        tokens.append(_Token(text[start:i], "".join(parts)))
    return tokens


class _Cursor:
    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._i = 0

    def next(self) -> _Token | None:
        if self._i >= len(self._tokens):
            return None
        self._i += 1
        return self._tokens[self._i - 1]

    def peek(self) -> _Token | None:
        return self._tokens[self._i] if self._i < len(self._tokens) else None


def _unescape(s: str) -> str:
    # Slack escapes exactly these three in command text; `&amp;` last so `&amp;lt;` stays `&lt;`.
    return s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _show(s: str, limit: int = 40) -> str:
    """A token quoted for an error message, safe inside a mrkdwn code span."""
    s = " ".join(s.split()).replace("`", "'")
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return f"`{s}`" if s else "`(empty)`"


def _suggest(word: str, candidates: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" Did you mean `{match[0]}`?" if match else ""


# ---------------------------------------------------------------------------------------------
# Pieces: one small function per kind of token
# ---------------------------------------------------------------------------------------------

_LIMIT_RE = re.compile(
    r"(?P<num>(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+)(?P<suffix>[km]?)",
    re.IGNORECASE,
)
_LIMIT_FORMS = "`5000`, `12.5k`, `1,500` or `2m`"
_MULTIPLIERS = {"": Decimal(1), "k": Decimal(1000), "m": Decimal(1_000_000)}


def _limit(tok: _Token) -> Decimal:
    raw = tok.raw
    negative = raw.startswith("-")
    m = _LIMIT_RE.fullmatch(raw[1:] if negative or raw.startswith("+") else raw)
    if m is None:
        raise _Problem(
            f"{_show(raw)} isn't a CU limit I can read — write it like {_LIMIT_FORMS}"
            " (group thousands by three, or leave the commas out)."
        )
    whole, _, fraction = m["num"].replace(",", "").partition(".")
    # Bound the digits before any arithmetic, which would round (28 digits) or overflow.
    too_big = len(whole.lstrip("0")) > 13
    too_fine = len(fraction) > 8
    value = Decimal(0) if too_big or too_fine else Decimal(f"{whole or 0}.{fraction or 0}")
    value *= _MULTIPLIERS[m["suffix"].lower()]
    if negative or (value <= 0 and not too_big and not too_fine):
        raise _Problem(f"A limit must be more than 0 CU; {_show(raw)} isn't.")
    if too_big or value > MAX_LIMIT:
        raise _Problem(
            f"{_show(raw)} CU is more than any budget could need (at most 1,000,000,000,000)."
        )
    if too_fine or value != value.quantize(Decimal("0.01")):
        raise _Problem(f"{_show(raw)} has more than two decimals of CU; round it a little.")
    # Normalise so that `12.5k` is 12500, not 12500.0, without scientific notation.
    return Decimal(int(value)) if value == value.to_integral_value() else value.normalize()


def _looks_numeric(raw: str) -> bool:
    return re.match(r"[-+]?[0-9.,]", raw) is not None


_PERIODS = {p.value: p for p in PeriodKind}
_PERIOD_FORMS = ", ".join(f"`{p}`" for p in _PERIODS)


def _budget_id(tok: _Token | None, subcommand: str) -> int:
    if tok is None:
        raise _Problem(
            f"`/budget {subcommand}` needs the budget's ID, the number shown by `/budget list`."
        )
    raw = tok.raw
    if raw.startswith("#") and raw[1:].isascii() and raw[1:].isdigit():
        raise _Problem(f"Budget IDs are plain numbers: write `{raw[1:]}`, not {_show(raw)}.")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 0 < int(raw) <= _MAX_ID:
        raise _Problem(
            f"{_show(raw)} isn't a budget ID — IDs are plain whole numbers like `3`"
            " (see `/budget list`)."
        )
    return int(raw)


def _thresholds(at: _Token, cursor: _Cursor) -> tuple[int, ...]:
    """`at 50,80,100`; also tolerates spaces after commas (`at 50, 80, 100`) and `%`."""
    first = cursor.next()
    if first is None:
        raise _Problem("`at` needs threshold percentages after it, like `at 50,80,100`.")
    spec = first.raw
    while (nxt := cursor.peek()) is not None and (spec.endswith(",") or nxt.raw.startswith(",")):
        cursor.next()
        spec += nxt.raw
    return _threshold_values(
        spec, "after `at` give whole percentages separated by commas, like `at 50,80,100`."
    )


def _threshold_values(spec: str, how: str) -> tuple[int, ...]:
    """`50,80,100` (items may carry spaces and `%`); ``how`` ends the error for a bad item."""
    values: set[int] = set()
    for item in spec.split(","):
        digits = item.strip().removesuffix("%").strip()
        if not (digits.isascii() and digits.isdigit()):
            raise _Problem(f"{_show(item or spec)} isn't a threshold — {how}")
        value = int(digits) if len(digits) <= 5 else THRESHOLD_MAX + 1
        if not THRESHOLD_MIN <= value <= THRESHOLD_MAX:
            raise _Problem(
                f"Threshold {_show(item)} is out of range; each must be from"
                f" {THRESHOLD_MIN} to {THRESHOLD_MAX} (% of the limit)."
            )
        values.add(value)
    return tuple(sorted(values))


_CHANNEL_ESCAPED_RE = re.compile(r"<#([A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL_NAME_RE = re.compile(r"#([\w-]{1,80})")


def _channel(tok: _Token) -> ChannelRef | None:
    """A `<#C…|name>` or `#name` token as a channel, or None when it is no channel at all."""
    raw = tok.raw
    if m := _CHANNEL_ESCAPED_RE.fullmatch(raw):
        return ChannelRef(id=m[1], name=m[2] or None)
    if raw.startswith("<#"):
        raise _Problem(f"{_show(raw)} doesn't look like a channel; pick it with `#`.")
    if not raw.startswith("#"):
        return None
    if m := _CHANNEL_NAME_RE.fullmatch(raw):
        return ChannelRef(name=m[1].lower())
    raise _Problem(
        f"{_show(raw)} isn't a channel name — channels look like `#gen-ai-spend`"
        " (budget IDs are written without `#`)."
    )


_MENTION_RE = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
_MAILTO_RE = re.compile(r"<mailto:([^|>]+)(?:\|[^>]*)?>", re.IGNORECASE)
_LINK_RE = re.compile(r"<([^|>]+)(?:\|[^>]*)?>")
_WHAT = {
    ScopeKind.PROJECT: "a project name or ID",
    ScopeKind.USER: "a user (@mention, email or ID)",
    ScopeKind.KEY: "an API key name or ID",
    ScopeKind.MODEL: "a model name or ID",
}


def _ref(kind: ScopeKind, value: str, raw: str) -> ScopeRef:
    """A project/user/key/model reference from its (quote-stripped) value."""
    value = value.strip()
    if m := _MENTION_RE.fullmatch(value):
        if kind is not ScopeKind.USER:
            raise _Problem(f"{_show(raw)} is a Slack user, but this needs {_WHAT[kind]}.")
        return ScopeRef(kind, _unescape(m[2] or m[1]), slack_user_id=m[1])
    if m := _MAILTO_RE.fullmatch(value):
        return ScopeRef(kind, _unescape(m[1].strip()))
    if value.startswith(("<#", "<!", "<@")):
        raise _Problem(f"{_show(raw)} isn't {_WHAT[kind]}.")
    if m := _LINK_RE.fullmatch(value):  # a pasted link; the caller may understand it
        value = m[1].strip()
    text = _unescape(value).strip()
    if not text:
        raise _Problem(f"{_show(raw)} is missing {_WHAT[kind]}.")
    return ScopeRef(kind, text)


_SCOPE_KINDS = {k.value: k for k in ScopeKind}
_SCOPE_FORMS = "`team`, `project:<name>`, `user:<email>`, `key:<name>` or `model:<name>`"


def _scope(tok: _Token, cursor: _Cursor) -> ScopeRef | None:
    """`team` or `kind:value` (value may be quoted or, after a bare `kind:`, the next token)."""
    if tok.word == "team":
        return TEAM_REF
    prefix, colon, _ = tok.raw.partition(":")
    if not colon or not prefix.isalpha():
        return None
    kind = _SCOPE_KINDS.get(prefix.casefold())
    if kind is None:
        raise _Problem(
            f"{_show(tok.raw)} isn't a scope I know; a scope is {_SCOPE_FORMS}."
            + _suggest(prefix.casefold(), _SCOPE_KINDS)
        )
    if kind is ScopeKind.TEAM:
        raise _Problem(
            f"The team scope is just `team`, without anything after it: {_show(tok.raw)}."
        )
    value = tok.value[len(prefix) + 1 :]
    raw = tok.raw
    if tok.raw == prefix + colon:  # `project: Marketing`
        nxt = cursor.next()
        if nxt is None:
            raise _Problem(f"{_show(tok.raw)} needs {_WHAT[kind]} after the colon.")
        value, raw = nxt.value, f"{tok.raw} {nxt.raw}"
    return _ref(kind, value, raw)


_DATE_RANGE_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:\.\.\.?|…)([0-9]{4})-([0-9]{2})-([0-9]{2})"
)
_RANGES = {r.value: r for r in RangePreset}


def _date(y: str, m: str, d: str) -> date:
    try:
        return date(int(y), int(m), int(d))
    except ValueError:
        raise _Problem(f"`{y}-{m}-{d}` isn't a date on the calendar.") from None


def _range(tok: _Token) -> UsageRange | None:
    """A RANGE token, or None when the token is not trying to be one."""
    if preset := _RANGES.get(tok.word):
        return preset
    if m := _DATE_RANGE_RE.fullmatch(tok.raw):
        start, end = _date(*m.groups()[:3]), _date(*m.groups()[3:])
        if end < start:
            raise _Problem(f"In {_show(tok.raw)} the end comes before the start.")
        span = DateRange(start, end)
        if span.days > MAX_RANGE_DAYS:
            raise _Problem(
                f"{_show(tok.raw)} covers {span.days} days; the most is {MAX_RANGE_DAYS}."
            )
        return span
    if re.match(r"[0-9]{4}-", tok.raw):
        raise _Problem(
            f"{_show(tok.raw)} isn't a date range — write `YYYY-MM-DD..YYYY-MM-DD`, both days"
            " included, like `2026-11-01..2026-11-30`."
        )
    return None


_DURATION_RE = re.compile(
    r"(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m(?:in)?)?", re.IGNORECASE
)


_MAX_SNOOZE_MINUTES = MAX_SNOOZE.days * 24 * 60


def _duration(tok: _Token | None) -> timedelta | None:
    """A snooze length, or None for `until-reset`."""
    if tok is None:
        raise _Problem("`/budget snooze` needs how long, like `4h`, `1d` or `until-reset`.")
    if tok.word == "until-reset":
        return None
    m = _DURATION_RE.fullmatch(tok.raw)
    if m is None or not any(m.groups()):
        raise _Problem(
            f"{_show(tok.raw)} isn't a duration — write it like `30m`, `4h`, `1d`, `1h30m`"
            " or `until-reset`." + _suggest(tok.word, ["until-reset"])
        )
    # Count minutes as ints first: a timedelta overflows on input like `99999999999d`, and
    # int() refuses very long digit strings.
    if any(part and len(part) > 9 for part in m.groups()):
        total = _MAX_SNOOZE_MINUTES + 1
    else:
        weeks, days, hours, minutes = (int(part or 0) for part in m.groups())
        total = ((weeks * 7 + days) * 24 + hours) * 60 + minutes
    if total <= 0:
        raise _Problem(f"A snooze must last longer than {_show(tok.raw)}.")
    if total > _MAX_SNOOZE_MINUTES:
        raise _Problem(
            f"{_show(tok.raw)} is too long to snooze; the most is {MAX_SNOOZE.days} days"
            " (or `until-reset`)."
        )
    return timedelta(minutes=total)


def _clock(tok: _Token) -> time:
    m = re.fullmatch(r"([0-9]{1,2}):([0-9]{2})", tok.raw)
    if m is None or int(m[1]) > 23 or int(m[2]) > 59:
        raise _Problem(
            f"{_show(tok.raw)} isn't a time of day — write it as `HH:MM` on a 24-hour clock,"
            " like `09:00` or `17:30`, or `off`."
        )
    return time(int(m[1]), int(m[2]))


def _timezone(tok: _Token | None) -> str:
    if tok is None:
        raise _Problem("`/budget timezone` needs an IANA timezone name, like `Europe/Paris`.")
    try:
        return validate_timezone(tok.value)
    except UnknownTimezone as unknown:
        suggestion = f" Did you mean `{unknown.suggestions[0]}`?" if unknown.suggestions else ""
    raise _Problem(
        f"{_show(tok.raw)} isn't a timezone I know — use an IANA name like `Europe/Paris`,"
        " `America/New_York` or `UTC`." + suggestion
    )


# ---------------------------------------------------------------------------------------------
# `/usage`
# ---------------------------------------------------------------------------------------------

_USAGE_FILTERS = {"project": ScopeKind.PROJECT, "user": ScopeKind.USER, "model": ScopeKind.MODEL}


def parse_usage(text: str) -> UsageRequest | GrammarError:
    """Parse the text after `/usage` (SPEC §4)."""
    try:
        return _parse_usage(_Cursor(_tokenize(text)))
    except _Problem as problem:
        return GrammarError(problem.message, _USAGE_USAGE)


def _parse_usage(cursor: _Cursor) -> UsageRequest:
    filters: dict[ScopeKind, tuple[ScopeRef, str]] = {}
    found_range: tuple[UsageRange, str] | None = None
    public: str | None = None
    while (tok := cursor.next()) is not None:
        word = tok.word
        if word == "public":
            _once("`public`", public, tok)
            public = tok.raw
        elif word in _USAGE_FILTERS:
            kind = _USAGE_FILTERS[word]
            value = cursor.next()
            if value is None:
                raise _Problem(f"{_show(tok.raw)} needs {_WHAT[kind]} after it.")
            raw = f"{tok.raw} {value.raw}"
            filters[kind] = (_ref(kind, value.value, raw), _once_filter(filters, kind, raw))
        elif (scope := _scope(tok, cursor)) is not None:
            if scope.kind not in _USAGE_FILTERS.values():
                raise _Problem(
                    "`/usage` can be narrowed by `project`, `user` and `model`,"
                    f" not {_show(tok.raw)}."
                )
            filters[scope.kind] = (scope, _once_filter(filters, scope.kind, tok.raw))
        elif (found := _range(tok)) is not None:
            _once("the range", found_range and found_range[1], tok)
            found_range = (found, tok.raw)
        else:
            raise _Problem(
                f"I don't understand {_show(tok.raw)}."
                + _suggest(word, [*_USAGE_FILTERS, *_RANGES, "public"])
            )
    return UsageRequest(
        range=found_range[0] if found_range else RangePreset.LAST_24H,
        project=filters[ScopeKind.PROJECT][0] if ScopeKind.PROJECT in filters else None,
        user=filters[ScopeKind.USER][0] if ScopeKind.USER in filters else None,
        model=filters[ScopeKind.MODEL][0] if ScopeKind.MODEL in filters else None,
        public=public is not None,
    )


def _once(what: str, earlier: str | None, tok: _Token) -> None:
    if earlier is not None:
        raise _Problem(
            f"You gave {what} twice ({_show(earlier)} and {_show(tok.raw)}); give it once."
        )


def _once_filter(filters: dict[ScopeKind, tuple[ScopeRef, str]], kind: ScopeKind, raw: str) -> str:
    if kind in filters:
        raise _Problem(
            f"You gave `{kind.value}` twice ({_show(filters[kind][1])} and {_show(raw)});"
            " give it once."
        )
    return raw


# ---------------------------------------------------------------------------------------------
# `/budget`
# ---------------------------------------------------------------------------------------------


def parse_budget(text: str) -> BudgetRequest | GrammarError:
    """Parse the text after `/budget` (SPEC §4); empty text lists the budgets."""
    # Known before tokenizing, so that even an unclosed quote is answered with the right form.
    first = text.split(maxsplit=1)[0].casefold() if text.strip() else "list"
    subcommand = first if first in _SUBCOMMAND_PARSERS else None
    try:
        tokens = _tokenize(text)
        if not tokens or tokens[0].word == "public":
            # `/budget public` is the default subcommand, shown to the channel.
            return BudgetList(public=_flags(_Cursor(tokens), "list").public)
        parser = _SUBCOMMAND_PARSERS.get(tokens[0].word)
        if parser is None:
            subcommand = None
            word = tokens[0].word
            hint = _SYNONYMS.get(word)
            suggestion = f" Did you mean `{hint}`?" if hint else _suggest(word, SUBCOMMANDS)
            raise _Problem(f"There is no `/budget` subcommand {_show(tokens[0].raw)}.{suggestion}")
        return parser(_Cursor(tokens[1:]))
    except _Problem as problem:
        return GrammarError(problem.message, usage_for(subcommand))


# The budget form (modal) asks for these one field at a time, with the same rules as `add`.
_FORM_LIMIT_USAGE = f"a number of CU, like {_LIMIT_FORMS}"
_FORM_THRESHOLDS_USAGE = "percentages of the limit separated by commas, like `50,80,100`"


def parse_limit(text: str) -> Decimal | GrammarError:
    """A LIMIT on its own, as typed in the budget form: `5000`, `12.5k`, `1,500` (a trailing
    `CU` is allowed). Same rules and messages as in `/budget add`."""
    raw = re.sub(r"\s*cu$", "", text.strip(), flags=re.IGNORECASE)
    try:
        if not raw:
            raise _Problem(f"Give the limit in CU, like {_LIMIT_FORMS}.")
        return _limit(_Token(raw, raw))
    except _Problem as problem:
        return GrammarError(problem.message, _FORM_LIMIT_USAGE)


def parse_thresholds(text: str) -> tuple[int, ...] | GrammarError:
    """Threshold percentages on their own, as typed in the budget form: `50,80,100`
    (spaces and `%` allowed), sorted and without repeats."""
    try:
        if not text.strip():
            raise _Problem("Give at least one threshold, like `50,80,100`.")
        return _threshold_values(
            text.strip(), "give whole percentages separated by commas, like `50,80,100`."
        )
    except _Problem as problem:
        return GrammarError(problem.message, _FORM_THRESHOLDS_USAGE)


@dataclass(frozen=True, slots=True)
class _Flags:
    public: bool = False
    channel: ChannelRef | None = None
    quiet: bool = False


def _flags(
    cursor: _Cursor, subcommand: str, *, channel: bool = False, quiet: bool = False
) -> _Flags:
    """The trailing options every simple subcommand shares: `public`, maybe `#channel`,
    and for the digest `quiet`."""
    public: str | None = None
    is_quiet: str | None = None
    found: tuple[ChannelRef, str] | None = None
    while (tok := cursor.next()) is not None:
        if tok.word == "public":
            _once("`public`", public, tok)
            public = tok.raw
        elif quiet and tok.word == "quiet":
            _once("`quiet`", is_quiet, tok)
            is_quiet = tok.raw
        elif channel and (ref := _channel(tok)) is not None:
            _once("the channel", found and found[1], tok)
            found = (ref, tok.raw)
        else:
            raise _Problem(
                f"`/budget {subcommand}` doesn't take {_show(tok.raw)}."
                + _suggest(tok.word, ["public", "quiet"] if quiet else ["public"])
            )
    return _Flags(public is not None, found[0] if found else None, is_quiet is not None)


def _parse_list(cursor: _Cursor) -> BudgetList:
    return BudgetList(public=_flags(cursor, "list").public)


def _parse_help(cursor: _Cursor) -> BudgetHelp:
    topic: str | None = None
    tok = cursor.peek()
    if tok is not None and tok.word != "public":
        cursor.next()
        if tok.word not in _BUDGET_USAGES and tok.word != "usage":
            raise _Problem(
                f"There is no help topic {_show(tok.raw)}."
                + _suggest(tok.word, [*SUBCOMMANDS, "usage"])
            )
        topic = tok.word
    return BudgetHelp(topic=topic, public=_flags(cursor, "help").public)


@dataclass
class _Options:
    """What `add` and `edit` were given; None is "not given" (it never means a default)."""

    limit: Decimal | None = None
    period: PeriodKind | None = None
    scope: ScopeRef | None = None
    channel: ChannelRef | None = None
    thresholds: tuple[int, ...] | None = None
    forecast: bool | None = None
    public: bool = False

    def empty(self) -> bool:
        """True when nothing but (maybe) `public` was given."""
        given = (self.limit, self.period, self.scope, self.channel, self.thresholds, self.forecast)
        return all(v is None for v in given)


_OPTION_WORDS = ["public", "forecast", "no-forecast", "at", "team", *_PERIODS]


def _options(cursor: _Cursor, subcommand: str) -> _Options:
    """The options of `add` and `edit`, in any order; each kind of token has one shape."""
    opts = _Options()
    seen: dict[str, str] = {}  # option → the token that gave it, for duplicate messages

    def once(option: str, what: str, tok: _Token, raw: str | None = None) -> None:
        _once(what, seen.get(option), tok)
        seen[option] = raw or tok.raw

    while (tok := cursor.next()) is not None:
        word = tok.word
        if word == "public":
            once("public", "`public`", tok)
            opts.public = True
        elif word in ("forecast", "no-forecast"):
            if "forecast" in seen and seen["forecast"].casefold() != word:
                raise _Problem(
                    f"{_show(seen['forecast'])} and {_show(tok.raw)} contradict each other;"
                    " pick one."
                )
            once("forecast", "`forecast`", tok)
            opts.forecast = word == "forecast"
        elif word == "at":
            once("at", "the thresholds", tok)
            opts.thresholds = _thresholds(tok, cursor)
        elif (scope := _scope(tok, cursor)) is not None:
            once("scope", "the scope", tok)
            opts.scope = scope
        elif (channel := _channel(tok)) is not None:
            once("channel", "the channel", tok)
            opts.channel = channel
        elif word in _PERIODS:
            once("period", "the period", tok)
            opts.period = _PERIODS[word]
        elif _looks_numeric(tok.raw):
            if not _LIMIT_RE.fullmatch(tok.raw.lstrip("+-")):
                raise _Problem(
                    f"{_show(tok.raw)} is neither a CU limit (like {_LIMIT_FORMS}; group"
                    f" thousands by three) nor a period ({_PERIOD_FORMS})."
                    + _suggest(word, _PERIODS)
                )
            limit = _limit(tok)
            once("limit", "the limit", tok)
            opts.limit = limit
        elif word in _SCOPE_KINDS:
            raise _Problem(
                f"Write the scope with a colon and no space: `{word}:<name>`, e.g."
                f' `{word}:Marketing` or `{word}:"Game Art"` — not {_show(tok.raw)} alone.'
            )
        else:
            raise _Problem(
                f"I don't understand {_show(tok.raw)} in `/budget {subcommand}`."
                + _suggest(word, _OPTION_WORDS)
            )
    return opts


def _parse_add(cursor: _Cursor) -> BudgetAdd | OpenBudgetModal:
    opts = _options(cursor, "add")
    if opts.empty():
        return OpenBudgetModal(None, public=opts.public)
    missing = [name for name, v in (("LIMIT", opts.limit), ("PERIOD", opts.period)) if v is None]
    if opts.limit is None or opts.period is None:
        hint = (
            f" — a period is one of {_PERIOD_FORMS}"
            if opts.period is None
            else f" — a limit is CU, like {_LIMIT_FORMS}"
        )
        raise _Problem(
            f"`/budget add` needs a {' and a '.join(missing)}{hint}."
            " (`/budget add` alone opens a form.)"
        )
    return BudgetAdd(
        limit=opts.limit,
        period=opts.period,
        scope=opts.scope or TEAM_REF,
        channel=opts.channel,
        thresholds=opts.thresholds or DEFAULT_THRESHOLDS,
        forecast=bool(opts.forecast),
        public=opts.public,
    )


def _parse_edit(cursor: _Cursor) -> BudgetEdit | OpenBudgetModal:
    budget_id = _budget_id(cursor.next(), "edit")
    opts = _options(cursor, "edit")
    if opts.empty():
        return OpenBudgetModal(budget_id, public=opts.public)
    return BudgetEdit(
        budget_id=budget_id,
        limit=opts.limit,
        period=opts.period,
        scope=opts.scope,
        channel=opts.channel,
        thresholds=opts.thresholds,
        forecast=opts.forecast,
        public=opts.public,
    )


def _parse_remove(cursor: _Cursor) -> BudgetRemove:
    budget_id = _budget_id(cursor.next(), "remove")
    return BudgetRemove(budget_id, public=_flags(cursor, "remove").public)


def _parse_snooze(cursor: _Cursor) -> BudgetSnooze:
    budget_id = _budget_id(cursor.next(), "snooze")
    duration = _duration(cursor.next())
    return BudgetSnooze(budget_id, duration, public=_flags(cursor, "snooze").public)


def _parse_unsnooze(cursor: _Cursor) -> BudgetUnsnooze:
    budget_id = _budget_id(cursor.next(), "unsnooze")
    return BudgetUnsnooze(budget_id, public=_flags(cursor, "unsnooze").public)


def _parse_digest(cursor: _Cursor) -> BudgetDigest:
    tok = cursor.next()
    if tok is None:
        raise _Problem("`/budget digest` needs a time like `09:00`, or `off`.")
    at = None if tok.word == "off" else _clock(tok)
    flags = _flags(cursor, "digest", channel=True, quiet=at is not None)
    return BudgetDigest(at, channel=flags.channel, public=flags.public, quiet=flags.quiet)


def _parse_timezone(cursor: _Cursor) -> BudgetTimezone:
    name = _timezone(cursor.next())
    return BudgetTimezone(name, public=_flags(cursor, "timezone").public)


def _parse_history(cursor: _Cursor) -> BudgetHistory:
    tok = cursor.peek()
    budget_id = None
    if tok is not None and tok.word != "public":
        budget_id = _budget_id(cursor.next(), "history")
    return BudgetHistory(budget_id, public=_flags(cursor, "history").public)


_SUBCOMMAND_PARSERS = {
    "list": _parse_list,
    "add": _parse_add,
    "edit": _parse_edit,
    "remove": _parse_remove,
    "snooze": _parse_snooze,
    "unsnooze": _parse_unsnooze,
    "digest": _parse_digest,
    "timezone": _parse_timezone,
    "history": _parse_history,
    "help": _parse_help,
}
