"""Turning command text into tokens, and each kind of token into a value: limits,
thresholds, channels, scopes, ranges, durations, clock times and time zones. The
parsers of `/usage` and `/budget` are made of these."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import Decimal

from bot.budgets.types import PeriodKind, ScopeKind
from bot.commands.requests import (
    MAX_ID,
    MAX_LIMIT,
    MAX_SNOOZE,
    TEAM_REF,
    THRESHOLD_MAX,
    THRESHOLD_MIN,
    ChannelRef,
    DateRange,
    RangePreset,
    ScopeRef,
    UsageRange,
)
from bot.scenario.errors import MAX_RANGE_DAYS
from bot.timezones import UnknownTimezone, validate_timezone

# Slack turns straight quotes into curly ones unless the user disabled smart quotes.
QUOTES = '"“”'


class Problem(Exception):
    """Internal: aborts a parse with a user-facing message; never leaves this module."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Token:
    raw: str  # as received: keywords are matched on it, and errors quote it
    value: str  # with quote marks removed: what names are read from

    @property
    def word(self) -> str:
        return self.raw.casefold()


def tokenize(text: str) -> list[Token]:
    """Split on whitespace, keeping quoted runs and Slack's `<…>` escapes in one token."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start, parts = i, []
        while i < n and not text[i].isspace():
            ch = text[i]
            if ch in QUOTES:
                end = next((j for j in range(i + 1, n) if text[j] in QUOTES), -1)
                if end < 0:
                    raise Problem(
                        f"The quote in {quoted(text[start:])} is never closed — "
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
        tokens.append(Token(text[start:i], "".join(parts)))
    return tokens


class Cursor:
    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._i = 0

    def next(self) -> Token | None:
        if self._i >= len(self._tokens):
            return None
        self._i += 1
        return self._tokens[self._i - 1]

    def peek(self) -> Token | None:
        return self._tokens[self._i] if self._i < len(self._tokens) else None


def _unescape(s: str) -> str:
    # Slack escapes exactly these three in command text; `&amp;` last so `&amp;lt;` stays `&lt;`.
    return s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def quoted(s: str, limit: int = 40) -> str:
    """A token quoted for an error message, safe inside a mrkdwn code span."""
    s = " ".join(s.split()).replace("`", "'")
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return f"`{s}`" if s else "`(empty)`"


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" Did you mean `{match[0]}`?" if match else ""


# ---------------------------------------------------------------------------------------------
# Pieces: one small function per kind of token
# ---------------------------------------------------------------------------------------------

LIMIT_RE = re.compile(
    r"(?P<num>(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+)(?P<suffix>[km]?)",
    re.IGNORECASE,
)
LIMIT_FORMS = "`5000`, `12.5k`, `1,500` or `2m`"
_MULTIPLIERS = {"": Decimal(1), "k": Decimal(1000), "m": Decimal(1_000_000)}


def read_limit(tok: Token) -> Decimal:
    raw = tok.raw
    negative = raw.startswith("-")
    m = LIMIT_RE.fullmatch(raw[1:] if negative or raw.startswith("+") else raw)
    if m is None:
        raise Problem(
            f"{quoted(raw)} isn't a CU limit I can read — write it like {LIMIT_FORMS}"
            " (group thousands by three, or leave the commas out)."
        )
    whole, _, fraction = m["num"].replace(",", "").partition(".")
    # Bound the digits before any arithmetic, which would round (28 digits) or overflow.
    too_big = len(whole.lstrip("0")) > 13
    too_fine = len(fraction) > 8
    value = Decimal(0) if too_big or too_fine else Decimal(f"{whole or 0}.{fraction or 0}")
    value *= _MULTIPLIERS[m["suffix"].lower()]
    if negative or (value <= 0 and not too_big and not too_fine):
        raise Problem(f"A limit must be more than 0 CU; {quoted(raw)} isn't.")
    if too_big or value > MAX_LIMIT:
        raise Problem(
            f"{quoted(raw)} CU is more than any budget could need (at most 1,000,000,000,000)."
        )
    if too_fine or value != value.quantize(Decimal("0.01")):
        raise Problem(f"{quoted(raw)} has more than two decimals of CU; round it a little.")
    # Normalise so that `12.5k` is 12500, not 12500.0, without scientific notation.
    return Decimal(int(value)) if value == value.to_integral_value() else value.normalize()


def looks_numeric(raw: str) -> bool:
    return re.match(r"[-+]?[0-9.,]", raw) is not None


PERIODS = {p.value: p for p in PeriodKind}
PERIOD_FORMS = ", ".join(f"`{p}`" for p in PERIODS)


def read_budget_id(tok: Token | None, subcommand: str) -> int:
    if tok is None:
        raise Problem(
            f"`/budget {subcommand}` needs the budget's ID, the number shown by `/budget list`."
        )
    raw = tok.raw
    if raw.startswith("#") and raw[1:].isascii() and raw[1:].isdigit():
        raise Problem(f"Budget IDs are plain numbers: write `{raw[1:]}`, not {quoted(raw)}.")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 0 < int(raw) <= MAX_ID:
        raise Problem(
            f"{quoted(raw)} isn't a budget ID — IDs are plain whole numbers like `3`"
            " (see `/budget list`)."
        )
    return int(raw)


def read_thresholds(at: Token, cursor: Cursor) -> tuple[int, ...]:
    """`at 50,80,100`; also tolerates spaces after commas (`at 50, 80, 100`) and `%`."""
    first = cursor.next()
    if first is None:
        raise Problem("`at` needs threshold percentages after it, like `at 50,80,100`.")
    spec = first.raw
    while (nxt := cursor.peek()) is not None and (spec.endswith(",") or nxt.raw.startswith(",")):
        cursor.next()
        spec += nxt.raw
    return threshold_values(
        spec, "after `at` give whole percentages separated by commas, like `at 50,80,100`."
    )


def threshold_values(spec: str, how: str) -> tuple[int, ...]:
    """`50,80,100` (items may carry spaces and `%`); ``how`` ends the error for a bad item."""
    values: set[int] = set()
    for item in spec.split(","):
        digits = item.strip().removesuffix("%").strip()
        if not (digits.isascii() and digits.isdigit()):
            raise Problem(f"{quoted(item or spec)} isn't a threshold — {how}")
        value = int(digits) if len(digits) <= 5 else THRESHOLD_MAX + 1
        if not THRESHOLD_MIN <= value <= THRESHOLD_MAX:
            raise Problem(
                f"Threshold {quoted(item)} is out of range; each must be from"
                f" {THRESHOLD_MIN} to {THRESHOLD_MAX} (% of the limit)."
            )
        values.add(value)
    return tuple(sorted(values))


_CHANNEL_ESCAPED_RE = re.compile(r"<#([A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL_NAME_RE = re.compile(r"#([\w-]{1,80})")


def read_channel(tok: Token) -> ChannelRef | None:
    """A `<#C…|name>` or `#name` token as a channel, or None when it is no channel at all."""
    raw = tok.raw
    if m := _CHANNEL_ESCAPED_RE.fullmatch(raw):
        return ChannelRef(id=m[1], name=m[2] or None)
    if raw.startswith("<#"):
        raise Problem(f"{quoted(raw)} doesn't look like a channel; pick it with `#`.")
    if not raw.startswith("#"):
        return None
    if m := _CHANNEL_NAME_RE.fullmatch(raw):
        return ChannelRef(name=m[1].lower())
    raise Problem(
        f"{quoted(raw)} isn't a channel name — channels look like `#gen-ai-spend`"
        " (budget IDs are written without `#`)."
    )


_MENTION_RE = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
_MAILTO_RE = re.compile(r"<mailto:([^|>]+)(?:\|[^>]*)?>", re.IGNORECASE)
_LINK_RE = re.compile(r"<([^|>]+)(?:\|[^>]*)?>")
SCOPE_WHAT = {
    ScopeKind.PROJECT: "a project name or ID",
    ScopeKind.USER: "a user (@mention, email or ID)",
    ScopeKind.KEY: "an API key name or ID",
    ScopeKind.MODEL: "a model name or ID",
}


def scope_ref(kind: ScopeKind, value: str, raw: str) -> ScopeRef:
    """A project/user/key/model reference from its (quote-stripped) value."""
    value = value.strip()
    if m := _MENTION_RE.fullmatch(value):
        if kind is not ScopeKind.USER:
            raise Problem(f"{quoted(raw)} is a Slack user, but this needs {SCOPE_WHAT[kind]}.")
        return ScopeRef(kind, _unescape(m[2] or m[1]), slack_user_id=m[1])
    if m := _MAILTO_RE.fullmatch(value):
        return ScopeRef(kind, _unescape(m[1].strip()))
    if value.startswith(("<#", "<!", "<@")):
        raise Problem(f"{quoted(raw)} isn't {SCOPE_WHAT[kind]}.")
    if m := _LINK_RE.fullmatch(value):  # a pasted link; the caller may understand it
        value = m[1].strip()
    text = _unescape(value).strip()
    if not text:
        raise Problem(f"{quoted(raw)} is missing {SCOPE_WHAT[kind]}.")
    return ScopeRef(kind, text)


SCOPE_KINDS = {k.value: k for k in ScopeKind}
_SCOPE_FORMS = "`team`, `project:<name>`, `user:<email>`, `key:<name>` or `model:<name>`"


def read_scope(tok: Token, cursor: Cursor) -> ScopeRef | None:
    """`team` or `kind:value` (value may be quoted or, after a bare `kind:`, the next token)."""
    if tok.word == "team":
        return TEAM_REF
    prefix, colon, _ = tok.raw.partition(":")
    if not colon or not prefix.isalpha():
        return None
    kind = SCOPE_KINDS.get(prefix.casefold())
    if kind is None:
        raise Problem(
            f"{quoted(tok.raw)} isn't a scope I know; a scope is {_SCOPE_FORMS}."
            + did_you_mean(prefix.casefold(), SCOPE_KINDS)
        )
    if kind is ScopeKind.TEAM:
        raise Problem(
            f"The team scope is just `team`, without anything after it: {quoted(tok.raw)}."
        )
    value = tok.value[len(prefix) + 1 :]
    raw = tok.raw
    if tok.raw == prefix + colon:  # `project: Marketing`
        nxt = cursor.next()
        if nxt is None:
            raise Problem(f"{quoted(tok.raw)} needs {SCOPE_WHAT[kind]} after the colon.")
        value, raw = nxt.value, f"{tok.raw} {nxt.raw}"
    return scope_ref(kind, value, raw)


_DATE_RANGE_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:\.\.\.?|…)([0-9]{4})-([0-9]{2})-([0-9]{2})"
)
RANGES = {r.value: r for r in RangePreset}


def _date(y: str, m: str, d: str) -> date:
    try:
        return date(int(y), int(m), int(d))
    except ValueError:
        raise Problem(f"`{y}-{m}-{d}` isn't a date on the calendar.") from None


def read_range(tok: Token) -> UsageRange | None:
    """A RANGE token, or None when the token is not trying to be one."""
    if preset := RANGES.get(tok.word):
        return preset
    if m := _DATE_RANGE_RE.fullmatch(tok.raw):
        start, end = _date(*m.groups()[:3]), _date(*m.groups()[3:])
        if end < start:
            raise Problem(f"In {quoted(tok.raw)} the end comes before the start.")
        span = DateRange(start, end)
        if span.days > MAX_RANGE_DAYS:
            raise Problem(
                f"{quoted(tok.raw)} covers {span.days} days; the most is {MAX_RANGE_DAYS}."
            )
        return span
    if re.match(r"[0-9]{4}-", tok.raw):
        raise Problem(
            f"{quoted(tok.raw)} isn't a date range — write `YYYY-MM-DD..YYYY-MM-DD`, both days"
            " included, like `2026-11-01..2026-11-30`."
        )
    return None


_DURATION_RE = re.compile(
    r"(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m(?:in)?)?", re.IGNORECASE
)


_MAX_SNOOZE_MINUTES = MAX_SNOOZE.days * 24 * 60


def read_duration(tok: Token | None) -> timedelta | None:
    """A snooze length, or None for `until-reset`."""
    if tok is None:
        raise Problem("`/budget snooze` needs how long, like `4h`, `1d` or `until-reset`.")
    if tok.word == "until-reset":
        return None
    m = _DURATION_RE.fullmatch(tok.raw)
    if m is None or not any(m.groups()):
        raise Problem(
            f"{quoted(tok.raw)} isn't a duration — write it like `30m`, `4h`, `1d`, `1h30m`"
            " or `until-reset`." + did_you_mean(tok.word, ["until-reset"])
        )
    # Count minutes as ints first: a timedelta overflows on input like `99999999999d`, and
    # int() refuses very long digit strings.
    if any(part and len(part) > 9 for part in m.groups()):
        total = _MAX_SNOOZE_MINUTES + 1
    else:
        weeks, days, hours, minutes = (int(part or 0) for part in m.groups())
        total = ((weeks * 7 + days) * 24 + hours) * 60 + minutes
    if total <= 0:
        raise Problem(f"A snooze must last longer than {quoted(tok.raw)}.")
    if total > _MAX_SNOOZE_MINUTES:
        raise Problem(
            f"{quoted(tok.raw)} is too long to snooze; the most is {MAX_SNOOZE.days} days"
            " (or `until-reset`)."
        )
    return timedelta(minutes=total)


def read_clock(tok: Token) -> time:
    m = re.fullmatch(r"([0-9]{1,2}):([0-9]{2})", tok.raw)
    if m is None or int(m[1]) > 23 or int(m[2]) > 59:
        raise Problem(
            f"{quoted(tok.raw)} isn't a time of day — write it as `HH:MM` on a 24-hour clock,"
            " like `09:00` or `17:30`, or `off`."
        )
    return time(int(m[1]), int(m[2]))


WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Full names and their first three letters, in any case: `mon`, `Monday`, `SUN`.
_WEEKDAYS = {
    **{name: n for n, name in enumerate(WEEKDAY_NAMES)},
    **{name[:3]: n for n, name in enumerate(WEEKDAY_NAMES)},
}


def read_weekday(tok: Token) -> int | None:
    """A day of the week (0 = Monday), or None when the token is none."""
    return _WEEKDAYS.get(tok.word)


def read_timezone(tok: Token | None) -> str:
    if tok is None:
        raise Problem("`/budget timezone` needs an IANA timezone name, like `Europe/Paris`.")
    try:
        return validate_timezone(tok.value)
    except UnknownTimezone as unknown:
        suggestion = f" Did you mean `{unknown.suggestions[0]}`?" if unknown.suggestions else ""
    raise Problem(
        f"{quoted(tok.raw)} isn't a timezone I know — use an IANA name like `Europe/Paris`,"
        " `America/New_York` or `UTC`." + suggestion
    )


def given_once(what: str, earlier: str | None, tok: Token) -> None:
    if earlier is not None:
        raise Problem(
            f"You gave {what} twice ({quoted(earlier)} and {quoted(tok.raw)}); give it once."
        )
