"""The `/budget` parser: the text after `/budget` in, a typed request or a
:class:`GrammarError` out; and the single-field checks the budget form shares with it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from bot.budgets.types import DEFAULT_THRESHOLDS, PeriodKind
from bot.commands.help import BUDGET_USAGES, SUBCOMMANDS, SYNONYMS, usage_for
from bot.commands.requests import (
    TEAM_REF,
    BudgetAdd,
    BudgetConnect,
    BudgetDigest,
    BudgetDisconnect,
    BudgetEdit,
    BudgetHelp,
    BudgetHistory,
    BudgetList,
    BudgetRemove,
    BudgetRequest,
    BudgetSnooze,
    BudgetTest,
    BudgetTimezone,
    BudgetUnsnooze,
    BudgetWatch,
    ChannelRef,
    GrammarError,
    OpenBudgetModal,
    ScopeRef,
)
from bot.commands.words import (
    LIMIT_FORMS,
    LIMIT_RE,
    PERIOD_FORMS,
    PERIODS,
    SCOPE_KINDS,
    WEEKDAY_NAMES,
    Cursor,
    Problem,
    Token,
    did_you_mean,
    given_once,
    looks_numeric,
    quoted,
    read_budget_id,
    read_channel,
    read_clock,
    read_duration,
    read_limit,
    read_scope,
    read_thresholds,
    read_timezone,
    read_weekday,
    threshold_values,
    tokenize,
)


def parse_budget(text: str) -> BudgetRequest | GrammarError:
    """Parse the text after `/budget` (SPEC §4); empty text lists the budgets."""
    # Known before tokenizing, so that even an unclosed quote is answered with the right form.
    first = text.split(maxsplit=1)[0].casefold() if text.strip() else "list"
    subcommand = first if first in _SUBCOMMAND_PARSERS else None
    try:
        tokens = tokenize(text)
        if not tokens or tokens[0].word == "public":
            # `/budget public` is the default subcommand, shown to the channel.
            return BudgetList(public=_flags(Cursor(tokens), "list").public)
        parser = _SUBCOMMAND_PARSERS.get(tokens[0].word)
        if parser is None:
            subcommand = None
            word = tokens[0].word
            hint = SYNONYMS.get(word)
            suggestion = f" Did you mean `{hint}`?" if hint else did_you_mean(word, SUBCOMMANDS)
            raise Problem(f"There is no `/budget` subcommand {quoted(tokens[0].raw)}.{suggestion}")
        return parser(Cursor(tokens[1:]))
    except Problem as problem:
        return GrammarError(problem.message, usage_for(subcommand))


# The budget form (modal) asks for these one field at a time, with the same rules as `add`.
_FORM_LIMIT_USAGE = f"a number of CU, like {LIMIT_FORMS}"
_FORM_THRESHOLDS_USAGE = "percentages of the limit separated by commas, like `50,80,100`"


def parse_limit(text: str) -> Decimal | GrammarError:
    """A LIMIT on its own, as typed in the budget form: `5000`, `12.5k`, `1,500` (a trailing
    `CU` is allowed). Same rules and messages as in `/budget add`."""
    raw = re.sub(r"\s*cu$", "", text.strip(), flags=re.IGNORECASE)
    try:
        if not raw:
            raise Problem(f"Give the limit in CU, like {LIMIT_FORMS}.")
        return read_limit(Token(raw, raw))
    except Problem as problem:
        return GrammarError(problem.message, _FORM_LIMIT_USAGE)


def parse_thresholds(text: str) -> tuple[int, ...] | GrammarError:
    """Threshold percentages on their own, as typed in the budget form: `50,80,100`
    (spaces and `%` allowed), sorted and without repeats."""
    try:
        if not text.strip():
            raise Problem("Give at least one threshold, like `50,80,100`.")
        return threshold_values(
            text.strip(), "give whole percentages separated by commas, like `50,80,100`."
        )
    except Problem as problem:
        return GrammarError(problem.message, _FORM_THRESHOLDS_USAGE)


@dataclass(frozen=True, slots=True)
class _Flags:
    public: bool = False
    channel: ChannelRef | None = None
    quiet: bool = False


def _flags(
    cursor: Cursor,
    subcommand: str,
    *,
    channel: bool = False,
    quiet: bool = False,
    more: Sequence[str] = (),
) -> _Flags:
    """The trailing options every simple subcommand shares: `public`, maybe `#channel`,
    and for the digest `quiet`; `more` are the subcommand's other words, for suggestions."""
    public: str | None = None
    is_quiet: str | None = None
    found: tuple[ChannelRef, str] | None = None
    while (tok := cursor.next()) is not None:
        if tok.word == "public":
            given_once("`public`", public, tok)
            public = tok.raw
        elif quiet and tok.word == "quiet":
            given_once("`quiet`", is_quiet, tok)
            is_quiet = tok.raw
        elif channel and (ref := read_channel(tok)) is not None:
            given_once("the channel", found and found[1], tok)
            found = (ref, tok.raw)
        else:
            raise Problem(
                f"`/budget {subcommand}` doesn't take {quoted(tok.raw)}."
                + did_you_mean(tok.word, ["public", *(["quiet"] if quiet else []), *more])
            )
    return _Flags(public is not None, found[0] if found else None, is_quiet is not None)


def _parse_list(cursor: Cursor) -> BudgetList:
    return BudgetList(public=_flags(cursor, "list").public)


def _parse_help(cursor: Cursor) -> BudgetHelp:
    topic: str | None = None
    tok = cursor.peek()
    if tok is not None and tok.word != "public":
        cursor.next()
        if tok.word not in BUDGET_USAGES and tok.word != "usage":
            raise Problem(
                f"There is no help topic {quoted(tok.raw)}."
                + did_you_mean(tok.word, [*SUBCOMMANDS, "usage"])
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


_OPTION_WORDS = ["public", "forecast", "no-forecast", "at", "team", *PERIODS]


def _options(cursor: Cursor, subcommand: str) -> _Options:
    """The options of `add` and `edit`, in any order; each kind of token has one shape."""
    opts = _Options()
    seen: dict[str, str] = {}  # option → the token that gave it, for duplicate messages

    def once(option: str, what: str, tok: Token, raw: str | None = None) -> None:
        given_once(what, seen.get(option), tok)
        seen[option] = raw or tok.raw

    while (tok := cursor.next()) is not None:
        word = tok.word
        if word == "public":
            once("public", "`public`", tok)
            opts.public = True
        elif word in ("forecast", "no-forecast"):
            if "forecast" in seen and seen["forecast"].casefold() != word:
                raise Problem(
                    f"{quoted(seen['forecast'])} and {quoted(tok.raw)} contradict each other;"
                    " pick one."
                )
            once("forecast", "`forecast`", tok)
            opts.forecast = word == "forecast"
        elif word == "at":
            once("at", "the thresholds", tok)
            opts.thresholds = read_thresholds(tok, cursor)
        elif (scope := read_scope(tok, cursor)) is not None:
            once("scope", "the scope", tok)
            opts.scope = scope
        elif (channel := read_channel(tok)) is not None:
            once("channel", "the channel", tok)
            opts.channel = channel
        elif word in PERIODS:
            once("period", "the period", tok)
            opts.period = PERIODS[word]
        elif looks_numeric(tok.raw):
            if not LIMIT_RE.fullmatch(tok.raw.lstrip("+-")):
                raise Problem(
                    f"{quoted(tok.raw)} is neither a CU limit (like {LIMIT_FORMS}; group"
                    f" thousands by three) nor a period ({PERIOD_FORMS})."
                    + did_you_mean(word, PERIODS)
                )
            limit = read_limit(tok)
            once("limit", "the limit", tok)
            opts.limit = limit
        elif word in SCOPE_KINDS:
            raise Problem(
                f"Write the scope with a colon and no space: `{word}:<name>`, e.g."
                f' `{word}:Marketing` or `{word}:"Game Art"` — not {quoted(tok.raw)} alone.'
            )
        else:
            raise Problem(
                f"I don't understand {quoted(tok.raw)} in `/budget {subcommand}`."
                + did_you_mean(word, _OPTION_WORDS)
            )
    return opts


def _parse_add(cursor: Cursor) -> BudgetAdd | OpenBudgetModal:
    opts = _options(cursor, "add")
    if opts.empty():
        return OpenBudgetModal(None, public=opts.public)
    missing = [name for name, v in (("LIMIT", opts.limit), ("PERIOD", opts.period)) if v is None]
    if opts.limit is None or opts.period is None:
        hint = (
            f" — a period is one of {PERIOD_FORMS}"
            if opts.period is None
            else f" — a limit is CU, like {LIMIT_FORMS}"
        )
        raise Problem(
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


def _parse_edit(cursor: Cursor) -> BudgetEdit | OpenBudgetModal:
    budget_id = read_budget_id(cursor.next(), "edit")
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


def _parse_remove(cursor: Cursor) -> BudgetRemove:
    budget_id = read_budget_id(cursor.next(), "remove")
    return BudgetRemove(budget_id, public=_flags(cursor, "remove").public)


def _parse_snooze(cursor: Cursor) -> BudgetSnooze:
    budget_id = read_budget_id(cursor.next(), "snooze")
    duration = read_duration(cursor.next())
    return BudgetSnooze(budget_id, duration, public=_flags(cursor, "snooze").public)


def _parse_unsnooze(cursor: Cursor) -> BudgetUnsnooze:
    budget_id = read_budget_id(cursor.next(), "unsnooze")
    return BudgetUnsnooze(budget_id, public=_flags(cursor, "unsnooze").public)


def _parse_digest(cursor: Cursor) -> BudgetDigest:
    tok = cursor.next()
    if tok is None:
        raise Problem("`/budget digest` needs a time like `09:00`, or `off`.")
    if tok.word == "off":
        flags = _flags(cursor, "digest off", channel=True)
        return BudgetDigest(None, channel=flags.channel, public=flags.public)
    at = read_clock(tok)
    cadence: Token | None = None  # `weekly` or `monthly`, as typed
    day: tuple[int, Token] | None = None  # a weekly digest's day, as typed
    rest: list[Token] = []  # the other options, for `_flags`
    while (tok := cursor.next()) is not None:
        if tok.word in (PeriodKind.WEEKLY, PeriodKind.MONTHLY):
            if cadence is not None and cadence.word != tok.word:
                raise Problem(
                    f"{quoted(cadence.raw)} and {quoted(tok.raw)} contradict each other; pick one."
                )
            given_once("the cadence", cadence and cadence.raw, tok)
            cadence = tok
        elif (weekday := read_weekday(tok)) is not None:
            if day is not None:
                raise Problem(
                    f"A weekly digest goes out on one day: {quoted(day[1].raw)} or"
                    f" {quoted(tok.raw)}, not both."
                )
            day = (weekday, tok)
        elif tok.word == PeriodKind.DAILY:
            raise Problem(
                f"`/budget digest` doesn't take {quoted(tok.raw)}: a digest is daily unless you"
                " say `weekly [day]` or `monthly`."
            )
        else:
            rest.append(tok)
    if day is not None and (cadence is None or cadence.word == PeriodKind.MONTHLY):
        shown = quoted(day[1].raw)
        if cadence is not None:
            raise Problem(
                f"A monthly digest goes out on the 1st of the month; it takes no day ({shown})."
                f" For a weekly one, write `weekly {shown[1:-1]}`."
            )
        raise Problem(
            f"{shown} is a day: it goes with `weekly`, like"
            f" `/budget digest {at:%H:%M} weekly {shown[1:-1]}`."
        )
    flags = _flags(Cursor(rest), "digest", channel=True, quiet=True, more=_CADENCE_WORDS)
    kind = PeriodKind(cadence.word) if cadence is not None else PeriodKind.DAILY
    return BudgetDigest(
        at,
        channel=flags.channel,
        public=flags.public,
        quiet=flags.quiet,
        cadence=kind,
        # Monday by default: the digest of the week just ended.
        weekday=(day[0] if day else 0) if kind is PeriodKind.WEEKLY else None,
    )


_CADENCE_WORDS = ("weekly", "monthly", *WEEKDAY_NAMES)


def _parse_timezone(cursor: Cursor) -> BudgetTimezone:
    name = read_timezone(cursor.next())
    return BudgetTimezone(name, public=_flags(cursor, "timezone").public)


def _parse_history(cursor: Cursor) -> BudgetHistory:
    tok = cursor.peek()
    budget_id = None
    if tok is not None and tok.word != "public":
        budget_id = read_budget_id(cursor.next(), "history")
    return BudgetHistory(budget_id, public=_flags(cursor, "history").public)


SENSITIVITIES = ("low", "normal", "high")


def _parse_watch(cursor: Cursor) -> BudgetWatch:
    off = False
    sensitivity: str | None = None
    channel: tuple[ChannelRef, str] | None = None
    public: str | None = None
    while (tok := cursor.next()) is not None:
        if tok.word == "off":
            given_once("`off`", "off" if off else None, tok)
            off = True
        elif tok.word in SENSITIVITIES:
            given_once("the sensitivity", sensitivity, tok)
            sensitivity = tok.word
        elif tok.word == "public":
            given_once("`public`", public, tok)
            public = tok.raw
        elif (ref := read_channel(tok)) is not None:
            given_once("the channel", channel and channel[1], tok)
            channel = (ref, tok.raw)
        else:
            raise Problem(
                f"`/budget watch` doesn't take {quoted(tok.raw)}: give a `#channel`, a"
                " sensitivity (`low`, `normal` or `high`), or `off`."
                + did_you_mean(tok.word, [*SENSITIVITIES, "off", "public"])
            )
    if off and sensitivity is not None:
        raise Problem("`off` turns the watch off; it takes no sensitivity.")
    return BudgetWatch(
        off=off,
        channel=channel[0] if channel else None,
        sensitivity=sensitivity,
        public=public is not None,
    )


def _parse_test(cursor: Cursor) -> BudgetTest:
    budget_id = read_budget_id(cursor.next(), "test")
    return BudgetTest(budget_id, public=_flags(cursor, "test").public)


def _parse_connect(cursor: Cursor) -> BudgetConnect:
    return BudgetConnect(public=_flags(cursor, "connect").public)


def _parse_disconnect(cursor: Cursor) -> BudgetDisconnect:
    return BudgetDisconnect(public=_flags(cursor, "disconnect").public)


_SUBCOMMAND_PARSERS = {
    "list": _parse_list,
    "add": _parse_add,
    "edit": _parse_edit,
    "remove": _parse_remove,
    "snooze": _parse_snooze,
    "unsnooze": _parse_unsnooze,
    "digest": _parse_digest,
    "watch": _parse_watch,
    "test": _parse_test,
    "timezone": _parse_timezone,
    "history": _parse_history,
    "connect": _parse_connect,
    "disconnect": _parse_disconnect,
    "help": _parse_help,
}
