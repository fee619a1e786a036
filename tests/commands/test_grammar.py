"""The `/usage` and `/budget` grammar (SPEC §4): every form, every error, and fuzzing."""

from __future__ import annotations

import zoneinfo
from datetime import date, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.budgets.types import DEFAULT_THRESHOLDS, PeriodKind, ScopeKind
from bot.commands.budget import parse_budget
from bot.commands.help import HELP_TEXT, SUBCOMMANDS, help_text, usage_for
from bot.commands.requests import (
    MAX_LIMIT,
    MAX_SNOOZE,
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
    BudgetSnooze,
    BudgetTest,
    BudgetTimezone,
    BudgetUnsnooze,
    BudgetWatch,
    ChannelRef,
    DateRange,
    GrammarError,
    OpenBudgetModal,
    RangePreset,
    ScopeRef,
    UsageRequest,
)
from bot.commands.usage import parse_usage
from bot.scenario.errors import MAX_RANGE_DAYS

SPEC_EXAMPLE = "add 12k monthly project:Marketing #gen-ai-spend at 50,90,100 forecast"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def slack_escape(text: str) -> str:
    """What Slack does to the characters a user types before sending the command."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def budget_ok(text: str) -> object:
    result = parse_budget(text)
    assert not isinstance(result, GrammarError), result
    return result


def usage_ok(text: str) -> UsageRequest:
    result = parse_usage(text)
    assert isinstance(result, UsageRequest), result
    return result


def project(text: str) -> ScopeRef:
    return ScopeRef(ScopeKind.PROJECT, text)


# ---------------------------------------------------------------------------------------------
# /usage
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", UsageRequest()),
        ("public", UsageRequest(public=True)),
        ("PUBLIC 7D", UsageRequest(RangePreset.LAST_7D, public=True)),
        ("project Marketing", UsageRequest(project=project("Marketing"))),
        ("project proj_123abc", UsageRequest(project=project("proj_123abc"))),
        ('project "Game Art" 7d', UsageRequest(RangePreset.LAST_7D, project=project("Game Art"))),
        ("project “Game Art” 3d", UsageRequest(RangePreset.LAST_3D, project=project("Game Art"))),
        ('project:"Game Art"', UsageRequest(project=project("Game Art"))),
        ("project R&amp;D", UsageRequest(project=project("R&D"))),
        (
            "user <@U123ABC>",
            UsageRequest(user=ScopeRef(ScopeKind.USER, "U123ABC", slack_user_id="U123ABC")),
        ),
        (
            "user <@U123ABC|ana>",
            UsageRequest(user=ScopeRef(ScopeKind.USER, "ana", slack_user_id="U123ABC")),
        ),
        (
            "user <mailto:ana@studio.com|ana@studio.com>",
            UsageRequest(user=ScopeRef(ScopeKind.USER, "ana@studio.com")),
        ),
        ("user ana@studio.com", UsageRequest(user=ScopeRef(ScopeKind.USER, "ana@studio.com"))),
        ("user usr_42", UsageRequest(user=ScopeRef(ScopeKind.USER, "usr_42"))),
        ('model "Flux Dev"', UsageRequest(model=ScopeRef(ScopeKind.MODEL, "Flux Dev"))),
        ("model model_abc", UsageRequest(model=ScopeRef(ScopeKind.MODEL, "model_abc"))),
        (
            "public 31d model m1 user <@U1> project p1",
            UsageRequest(
                RangePreset.LAST_31D,
                project=project("p1"),
                user=ScopeRef(ScopeKind.USER, "U1", slack_user_id="U1"),
                model=ScopeRef(ScopeKind.MODEL, "m1"),
                public=True,
            ),
        ),
        # A keyword right after `project` is the project's name: the name always comes next.
        ("project public", UsageRequest(project=project("public"))),
    ],
)
def test_usage_forms(text: str, expected: UsageRequest) -> None:
    assert parse_usage(text) == expected


@pytest.mark.parametrize("preset", list(RangePreset))
def test_usage_every_named_range(preset: RangePreset) -> None:
    assert usage_ok(preset.value).range is preset
    assert usage_ok(preset.value.upper()).range is preset


def test_usage_default_range_is_24h() -> None:
    assert usage_ok("").range is RangePreset.LAST_24H
    assert RangePreset.LAST_24H.rolling == timedelta(hours=24)
    assert RangePreset.THIS_MONTH.rolling is None


@pytest.mark.parametrize(
    ("text", "start", "end", "days"),
    [
        # The user typing the first and last days of November means the whole month.
        ("2026-11-01..2026-11-30", date(2026, 11, 1), date(2026, 11, 30), 30),
        ("2026-11-05..2026-11-05", date(2026, 11, 5), date(2026, 11, 5), 1),
        ("2024-02-28..2024-03-01", date(2024, 2, 28), date(2024, 3, 1), 3),
        ("2026-01-01..2026-04-30", date(2026, 1, 1), date(2026, 4, 30), MAX_RANGE_DAYS),
        ("2026-11-01...2026-11-02", date(2026, 11, 1), date(2026, 11, 2), 2),
        ("2026-11-01…2026-11-02", date(2026, 11, 1), date(2026, 11, 2), 2),
    ],
)
def test_usage_date_ranges_include_both_ends(text: str, start: date, end: date, days: int) -> None:
    span = usage_ok(text).range
    assert span == DateRange(start, end)
    assert isinstance(span, DateRange)
    assert span.days == days
    assert span.end_exclusive == end + timedelta(days=1)


@pytest.mark.parametrize(
    ("text", "offending", "also"),
    [
        ("yesterdy", "`yesterdy`", "`yesterday`"),
        ("this_week", "`this_week`", "`this-week`"),
        ("2026-11-30..2026-11-01", "`2026-11-30..2026-11-01`", "before the start"),
        ("2026-01-01..2026-05-01", "`2026-01-01..2026-05-01`", "121 days"),
        ("2026-02-30..2026-03-01", "`2026-02-30`", "calendar"),
        ("2026-11-01..2026-13-01", "`2026-13-01`", "calendar"),
        ("2026-11-01", "`2026-11-01`", "YYYY-MM-DD..YYYY-MM-DD"),
        ("2026/11/01..2026/11/30", "`2026/11/01..2026/11/30`", "don't understand"),
        ("7d 3d", "`7d`", "`3d`"),
        ("project", "`project`", "project name"),
        ("7d user", "`user`", "@mention"),
        ("project a project b", "`project a`", "`project b`"),
        ("project a project:b", "`project a`", "`project:b`"),
        ("public public", "`public`", "twice"),
        ("key:k1", "`key:k1`", "`project`"),
        ("team", "`team`", "`model`"),
        ("colour:red", "`colour:red`", "scope"),
        ('project "Game Art', '`"Game Art`', "never closed"),
        ("model <@U123>", "`model <@U123>`", "Slack user"),
        ("user <#C123|general>", "`user <#C123|general>`", "user"),
        ('project ""', '`project ""`', "missing"),
        ("projet Marketing", "`projet`", "`project`"),
        ("help", "`help`", "don't understand"),
    ],
)
def test_usage_errors_quote_the_offending_token(text: str, offending: str, also: str) -> None:
    result = parse_usage(text)
    assert isinstance(result, GrammarError)
    assert offending in result.message
    assert also in result.message
    assert result.usage.startswith("`/usage ")
    assert result.usage in result.text


# ---------------------------------------------------------------------------------------------
# /budget: list, help and unknown subcommands
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", BudgetList()),
        ("   ", BudgetList()),
        ("list", BudgetList()),
        ("LIST", BudgetList()),
        ("list public", BudgetList(public=True)),
        ("public", BudgetList(public=True)),
        ("help", BudgetHelp()),
        ("help public", BudgetHelp(public=True)),
        ("help add", BudgetHelp("add")),
        ("help usage", BudgetHelp("usage")),
        ("history", BudgetHistory()),
        ("history 12", BudgetHistory(12)),
        ("history 12 public", BudgetHistory(12, public=True)),
        ("history public", BudgetHistory(public=True)),
        ("remove 3", BudgetRemove(3)),
        ("remove 3 public", BudgetRemove(3, public=True)),
        ("unsnooze 3", BudgetUnsnooze(3)),
        ("unsnooze 007", BudgetUnsnooze(7)),
    ],
)
def test_budget_simple_subcommands(text: str, expected: object) -> None:
    assert parse_budget(text) == expected


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("ad 5k daily", "`add`"),
        ("lst", "`list`"),
        ("snoze 3 4h", "`snooze`"),
        ("delete 3", "`remove`"),
        ("rm 3", "`remove`"),
        ("tz UTC", "`timezone`"),
    ],
)
def test_unknown_subcommand_suggests_the_closest(text: str, suggestion: str) -> None:
    result = parse_budget(text)
    assert isinstance(result, GrammarError)
    assert f"`{text.split()[0]}`" in result.message
    assert f"Did you mean {suggestion}?" in result.message
    for subcommand in SUBCOMMANDS:
        assert f"`{subcommand}`" in result.usage


def test_unknown_subcommand_far_from_any_has_no_suggestion() -> None:
    result = parse_budget("xyzzy")
    assert isinstance(result, GrammarError)
    assert "`xyzzy`" in result.message
    assert "Did you mean" not in result.message


def test_help_text_covers_the_whole_grammar() -> None:
    for subcommand in SUBCOMMANDS:
        assert f"/budget {subcommand}" in HELP_TEXT
    for period in PeriodKind:
        assert f"`{period.value}`" in HELP_TEXT
    for kind in ScopeKind:
        assert f"`{kind.value}" in HELP_TEXT
    assert "/usage" in HELP_TEXT
    assert SPEC_EXAMPLE in HELP_TEXT
    assert help_text() == HELP_TEXT
    assert usage_for("snooze") in help_text("snooze")
    assert help_text("usage") == f"*Usage:* {usage_for('usage')}"


# ---------------------------------------------------------------------------------------------
# /budget add and edit
# ---------------------------------------------------------------------------------------------


def test_spec_example() -> None:
    assert parse_budget(SPEC_EXAMPLE) == BudgetAdd(
        limit=Decimal(12000),
        period=PeriodKind.MONTHLY,
        scope=project("Marketing"),
        channel=ChannelRef(name="gen-ai-spend"),
        thresholds=(50, 90, 100),
        forecast=True,
    )


@pytest.mark.parametrize(
    ("channel_text", "channel"),
    [
        ("<#C0123ABCD|gen-ai-spend>", ChannelRef(id="C0123ABCD", name="gen-ai-spend")),
        ("<#C0123ABCD>", ChannelRef(id="C0123ABCD")),
        ("<#C0123ABCD|>", ChannelRef(id="C0123ABCD")),
        ("<#G0PRIVATE|secret-spend>", ChannelRef(id="G0PRIVATE", name="secret-spend")),
        ("#Gen-AI-Spend", ChannelRef(name="gen-ai-spend")),
    ],
)
def test_spec_example_with_each_channel_form(channel_text: str, channel: ChannelRef) -> None:
    text = SPEC_EXAMPLE.replace("#gen-ai-spend", channel_text)
    result = budget_ok(text)
    assert isinstance(result, BudgetAdd)
    assert result.channel == channel
    assert result.scope == project("Marketing")


def test_add_defaults() -> None:
    assert parse_budget("add 5000 daily") == BudgetAdd(Decimal(5000), PeriodKind.DAILY)
    result = budget_ok("add 5000 daily")
    assert isinstance(result, BudgetAdd)
    assert result.scope == TEAM_REF
    assert result.channel is None
    assert result.thresholds == DEFAULT_THRESHOLDS
    assert result.forecast is False
    assert result.public is False


@pytest.mark.parametrize(
    ("spelling", "cu"),
    [
        ("5000", "5000"),
        ("12.5k", "12500"),
        ("12.5K", "12500"),
        ("1,500", "1500"),
        ("1.2K", "1200"),
        ("1.1k", "1100"),
        ("2m", "2000000"),
        ("2M", "2000000"),
        ("1,500,000", "1500000"),
        ("1,500k", "1500000"),
        ("0.5", "0.5"),
        (".5k", "500"),
        ("1,500.25", "1500.25"),
        ("+750", "750"),
        ("1000000000000", "1000000000000"),
        ("1000000m", "1000000000000"),
    ],
)
def test_each_limit_spelling(spelling: str, cu: str) -> None:
    result = budget_ok(f"add {spelling} weekly")
    assert isinstance(result, BudgetAdd)
    assert result.limit == Decimal(cu)
    assert str(result.limit) == cu  # no `1.25E+4` or `12500.0` reaching a message


@pytest.mark.parametrize("period", list(PeriodKind))
def test_each_period(period: PeriodKind) -> None:
    for spelling in (period.value, period.value.upper()):
        result = budget_ok(f"add 5k {spelling}")
        assert isinstance(result, BudgetAdd)
        assert result.period is period


@pytest.mark.parametrize(
    ("scope_text", "scope"),
    [
        ("team", TEAM_REF),
        ("TEAM", TEAM_REF),
        ("project:Marketing", project("Marketing")),
        ("Project:Marketing", project("Marketing")),
        ("project:proj_9f8e", project("proj_9f8e")),
        ('project:"Game Art"', project("Game Art")),
        ("project:“Game Art”", project("Game Art")),
        ("project:”Game Art”", project("Game Art")),
        ("project: Marketing", project("Marketing")),
        ('project: "Game Art"', project("Game Art")),
        ("project:R&amp;D", project("R&D")),
        ("user:ana@studio.com", ScopeRef(ScopeKind.USER, "ana@studio.com")),
        ("user:<mailto:ana@studio.com|ana@studio.com>", ScopeRef(ScopeKind.USER, "ana@studio.com")),
        ("user:usr_42", ScopeRef(ScopeKind.USER, "usr_42")),
        ("user:<@U123ABC>", ScopeRef(ScopeKind.USER, "U123ABC", slack_user_id="U123ABC")),
        ("user:<@U123ABC|ana>", ScopeRef(ScopeKind.USER, "ana", slack_user_id="U123ABC")),
        ("key:ci-pipeline", ScopeRef(ScopeKind.KEY, "ci-pipeline")),
        ('key:"CI pipeline"', ScopeRef(ScopeKind.KEY, "CI pipeline")),
        ("model:model_abc", ScopeRef(ScopeKind.MODEL, "model_abc")),
        ('model:"Flux Dev"', ScopeRef(ScopeKind.MODEL, "Flux Dev")),
    ],
)
def test_each_scope(scope_text: str, scope: ScopeRef) -> None:
    result = budget_ok(f"add 5k daily {scope_text}")
    assert isinstance(result, BudgetAdd)
    assert result.scope == scope


def test_scope_ref_helpers() -> None:
    assert str(project("Game Art")) == 'project:"Game Art"'
    assert str(project("Marketing")) == "project:Marketing"
    assert str(TEAM_REF) == "team"
    assert str(ScopeRef(ScopeKind.USER, "ana", slack_user_id="U1")) == "user:<@U1>"
    assert ScopeRef(ScopeKind.USER, "a@b.com").is_email
    assert not ScopeRef(ScopeKind.USER, "@ana").is_email
    assert not ScopeRef(ScopeKind.USER, "ana", slack_user_id="U1").is_email
    assert str(ChannelRef(id="C1", name="x")) == "<#C1>"
    assert str(ChannelRef(name="x")) == "#x"
    with pytest.raises(ValueError):
        ScopeRef(ScopeKind.PROJECT)
    with pytest.raises(ValueError):
        ChannelRef()


@pytest.mark.parametrize(
    ("at", "thresholds"),
    [
        ("at 50,80,100", (50, 80, 100)),
        ("at 100,50,50", (50, 100)),
        ("at 50, 80, 100", (50, 80, 100)),
        ("at 50 ,80", (50, 80)),
        ("at 80%,120%", (80, 120)),
        ("at 1,1000", (1, 1000)),
        ("AT 90", (90,)),
    ],
)
def test_thresholds(at: str, thresholds: tuple[int, ...]) -> None:
    result = budget_ok(f"add 5k daily {at} forecast")
    assert isinstance(result, BudgetAdd)
    assert result.thresholds == thresholds
    assert result.forecast is True  # the token after the list is still read as an option


def test_add_options_in_any_order() -> None:
    expected = budget_ok(SPEC_EXAMPLE + " public")
    shuffled = (
        "add public forecast at 100,90,50 <#C1|gen-ai-spend> project:Marketing monthly 12,000"
    )
    result = budget_ok(shuffled)
    assert isinstance(expected, BudgetAdd)
    assert isinstance(result, BudgetAdd)
    assert result == BudgetAdd(
        limit=expected.limit,
        period=expected.period,
        scope=expected.scope,
        channel=ChannelRef(id="C1", name="gen-ai-spend"),
        thresholds=expected.thresholds,
        forecast=True,
        public=True,
    )


def test_add_without_arguments_opens_the_modal() -> None:
    assert parse_budget("add") == OpenBudgetModal()
    assert parse_budget("ADD public") == OpenBudgetModal(public=True)


def test_edit_with_only_an_id_opens_the_filled_modal() -> None:
    assert parse_budget("edit 3") == OpenBudgetModal(3)
    assert parse_budget("edit 3 public") == OpenBudgetModal(3, public=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("edit 3 15k", BudgetEdit(3, limit=Decimal(15000))),
        ("edit 3 at 80,100", BudgetEdit(3, thresholds=(80, 100))),
        ("edit 3 weekly", BudgetEdit(3, period=PeriodKind.WEEKLY)),
        ("edit 3 team", BudgetEdit(3, scope=TEAM_REF)),
        ("edit 3 #alerts", BudgetEdit(3, channel=ChannelRef(name="alerts"))),
        ("edit 3 forecast", BudgetEdit(3, forecast=True)),
        ("edit 3 no-forecast", BudgetEdit(3, forecast=False)),
        (
            "edit 12 2m 30d key:ci public",
            BudgetEdit(
                12,
                limit=Decimal(2_000_000),
                period=PeriodKind.ROLLING_30D,
                scope=ScopeRef(ScopeKind.KEY, "ci"),
                public=True,
            ),
        ),
    ],
)
def test_edit_changes_only_what_is_given(text: str, expected: BudgetEdit) -> None:
    assert parse_budget(text) == expected


def test_add_accepts_explicit_no_forecast() -> None:
    result = budget_ok("add 5k daily no-forecast")
    assert isinstance(result, BudgetAdd)
    assert result.forecast is False


# ---------------------------------------------------------------------------------------------
# /budget snooze, digest, timezone
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("4h", timedelta(hours=4)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d12h", timedelta(days=2, hours=12)),
        ("1w", timedelta(weeks=1)),
        ("45min", timedelta(minutes=45)),
        ("4H", timedelta(hours=4)),
        ("90d", MAX_SNOOZE),
        ("2160h", MAX_SNOOZE),
        ("until-reset", None),
        ("Until-Reset", None),
    ],
)
def test_snooze_durations(duration: str, expected: timedelta | None) -> None:
    result = parse_budget(f"snooze 7 {duration}")
    assert result == BudgetSnooze(7, expected)
    assert isinstance(result, BudgetSnooze)
    assert result.until_reset is (expected is None)


def test_snooze_public() -> None:
    assert parse_budget("snooze 7 4h public") == BudgetSnooze(7, timedelta(hours=4), public=True)


WEEKLY, MONTHLY = PeriodKind.WEEKLY, PeriodKind.MONTHLY
MON, TUE, FRI, SUN = ({"cadence": WEEKLY, "weekday": n} for n in (0, 1, 4, 6))
FINANCE = ChannelRef(name="finance")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("digest 09:00", BudgetDigest(time(9, 0))),
        ("digest 9:05", BudgetDigest(time(9, 5))),
        ("digest 23:59 public", BudgetDigest(time(23, 59), public=True)),
        (
            "digest 17:30 <#C42|finance>",
            BudgetDigest(time(17, 30), channel=ChannelRef(id="C42", name="finance")),
        ),
        ("digest 00:00 #finance", BudgetDigest(time(0, 0), channel=ChannelRef(name="finance"))),
        ("digest off", BudgetDigest(None)),
        ("digest OFF #finance", BudgetDigest(None, channel=ChannelRef(name="finance"))),
        ("digest off <#C42>", BudgetDigest(None, channel=ChannelRef(id="C42"))),
        ("digest 09:00 weekly", BudgetDigest(time(9, 0), cadence=WEEKLY, weekday=0)),
        ("digest 09:00 #finance weekly fri", BudgetDigest(time(9, 0), channel=FINANCE, **FRI)),
        ("digest 09:00 WEEKLY Friday", BudgetDigest(time(9, 0), **FRI)),
        ("digest 09:00 weekly sun quiet", BudgetDigest(time(9), quiet=True, **SUN)),
        ("digest 09:00 weekly quiet", BudgetDigest(time(9), quiet=True, **MON)),
        ("digest 09:00 quiet weekly SUNDAY", BudgetDigest(time(9), quiet=True, **SUN)),
        ("digest 09:00 weekly tue #finance", BudgetDigest(time(9), channel=FINANCE, **TUE)),
        ("digest 09:00 weekly #finance tue", BudgetDigest(time(9), channel=FINANCE, **TUE)),
        ("digest 08:30 monthly", BudgetDigest(time(8, 30), cadence=MONTHLY)),
        (
            "digest 08:30 monthly #finance quiet public",
            BudgetDigest(time(8, 30), channel=FINANCE, quiet=True, public=True, cadence=MONTHLY),
        ),
    ],
)
def test_digest(text: str, expected: BudgetDigest) -> None:
    result = parse_budget(text)
    assert result == expected
    assert isinstance(result, BudgetDigest)
    assert result.off is (expected.at is None)


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("Europe/Paris", "Europe/Paris"),
        ("europe/paris", "Europe/Paris"),
        ("AMERICA/NEW_YORK", "America/New_York"),
        ("UTC", "UTC"),
        ("utc", "UTC"),
        ("Asia/Kolkata", "Asia/Kolkata"),
    ],
)
def test_timezone_is_validated_and_canonical(typed: str, canonical: str) -> None:
    assert parse_budget(f"timezone {typed}") == BudgetTimezone(canonical)
    assert parse_budget(f"timezone {typed} public") == BudgetTimezone(canonical, public=True)


# ---------------------------------------------------------------------------------------------
# /budget errors: each names the offending token and shows the subcommand's form
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "offending", "also", "usage"),
    [
        # add: limits
        ("add 0 daily", "`0`", "more than 0", "/budget add <LIMIT>"),
        ("add 0k daily", "`0k`", "more than 0", "/budget add <LIMIT>"),
        ("add -5 daily", "`-5`", "more than 0", "/budget add <LIMIT>"),
        ("add -5k daily", "`-5k`", "more than 0", "/budget add <LIMIT>"),
        ("add nan daily", "`nan`", "don't understand", "/budget add <LIMIT>"),
        ("add inf daily", "`inf`", "don't understand", "/budget add <LIMIT>"),
        ("add 1e5 daily", "`1e5`", "neither a CU limit", "/budget add <LIMIT>"),
        ("add 1,50 daily", "`1,50`", "group thousands by three", "/budget add <LIMIT>"),
        ("add 1500,000 daily", "`1500,000`", "neither a CU limit", "/budget add <LIMIT>"),
        ("add 12,5k daily", "`12,5k`", "neither a CU limit", "/budget add <LIMIT>"),
        ("add 5x daily", "`5x`", "neither a CU limit", "/budget add <LIMIT>"),
        ("add 2000000m daily", "`2000000m`", "1,000,000,000,000", "/budget add <LIMIT>"),
        ("add 1000000000001 daily", "`1000000000001`", "more than any", "/budget add <LIMIT>"),
        ("add 99999999999999999999999 daily", "`9999", "more than any", "/budget add <LIMIT>"),
        ("add 0.001 daily", "`0.001`", "two decimals", "/budget add <LIMIT>"),
        ("add 1.000000000000000000000000000001 daily", "`1.000", "decimals", "/budget add"),
        ("add 5k 6k daily", "`5k`", "`6k`", "/budget add <LIMIT>"),
        # add: periods and missing positionals
        ("add 12k montly", "`montly`", "Did you mean `monthly`?", "/budget add <LIMIT>"),
        ("add 5k 3dd", "`3dd`", "Did you mean `30d`?", "/budget add <LIMIT>"),
        ("add 1h daily", "`1h`", "nor a period", "/budget add <LIMIT>"),
        ("add 5k daily weekly", "`daily`", "`weekly`", "/budget add <LIMIT>"),
        ("add 5k", "PERIOD", "`monthly`", "/budget add <LIMIT>"),
        ("add monthly", "LIMIT", "`12.5k`", "/budget add <LIMIT>"),
        ("add forecast", "LIMIT and a PERIOD", "opens a form", "/budget add <LIMIT>"),
        # add: scopes
        ("add 5k daily project Marketing", "`project`", "`project:Marketing`", "/budget add"),
        ("add 5k daily Marketing", "`Marketing`", "don't understand", "/budget add"),
        ("add 5k daily proj:Marketing", "`proj:Marketing`", "`project`", "/budget add"),
        ("add 5k daily team:x", "`team:x`", "just `team`", "/budget add"),
        ("add 5k daily project:", "`project:`", "project name", "/budget add"),
        ('add 5k daily project:""', '`project:""`', "missing", "/budget add"),
        ("add 5k daily project:a team", "`project:a`", "`team`", "/budget add"),
        ("add 5k daily model:<@U1>", "`model:<@U1>`", "Slack user", "/budget add"),
        ('add 5k daily project:"Game Art', '`project:"Game Art`', "never closed", "/budget add"),
        ("add 5k daily “Game Art”", "`“Game Art”`", "don't understand", "/budget add"),
        # add: channels
        ("add 5k daily #", "`#`", "channel", "/budget add"),
        ("add 5k daily #a #b", "`#a`", "`#b`", "/budget add"),
        ("add 5k daily <#c1>", "`<#c1>`", "channel", "/budget add"),
        ("add 5k daily #a,b", "`#a,b`", "channel", "/budget add"),
        # add: thresholds
        ("add 5k daily at", "`at`", "50,80,100", "/budget add"),
        ("add 5k daily at 0,50", "`0`", "1 to 1000", "/budget add"),
        ("add 5k daily at 50,1001", "`1001`", "1 to 1000", "/budget add"),
        ("add 5k daily at 50,99999999999999", "`99999999999999`", "1 to 1000", "/budget add"),
        ("add 5k daily at 50,,80", "`50,,80`", "threshold", "/budget add"),
        ("add 5k daily at 50.5", "`50.5`", "whole percentages", "/budget add"),
        ("add 5k daily at -5", "`-5`", "threshold", "/budget add"),
        ("add 5k daily at fifty", "`fifty`", "threshold", "/budget add"),
        ("add 5k daily at 50 at 80", "`at`", "twice", "/budget add"),
        # add: flags
        ("add 5k daily forecast no-forecast", "`forecast`", "`no-forecast`", "/budget add"),
        ("add 5k daily forecast forecast", "`forecast`", "twice", "/budget add"),
        ("add 5k daily public public", "`public`", "twice", "/budget add"),
        ("add 5k daily publik", "`publik`", "Did you mean `public`?", "/budget add"),
        ("add 5k daily forcast", "`forcast`", "Did you mean `forecast`?", "/budget add"),
        # edit
        ("edit", "ID", "/budget list", "/budget edit <id>"),
        ("edit 5k", "`5k`", "whole numbers", "/budget edit <id>"),
        ("edit #3 5k", "`#3`", "write `3`", "/budget edit <id>"),
        ("edit 0 5k", "`0`", "isn't a budget ID", "/budget edit <id>"),
        ("edit -3 5k", "`-3`", "isn't a budget ID", "/budget edit <id>"),
        ("edit 99999999999999999999 5k", "`9999", "isn't a budget ID", "/budget edit <id>"),
        ("edit 3 5k 6k", "`5k`", "`6k`", "/budget edit <id>"),
        ("edit 3 forecast no-forecast", "`forecast`", "contradict", "/budget edit <id>"),
        ("edit 3 project:a user:b", "`project:a`", "`user:b`", "/budget edit <id>"),
        # remove / unsnooze / history
        ("remove", "ID", "/budget list", "/budget remove <id>"),
        ("remove abc", "`abc`", "budget ID", "/budget remove <id>"),
        ("remove 3 4", "`4`", "doesn't take", "/budget remove <id>"),
        ("remove 3 #general", "`#general`", "doesn't take", "/budget remove <id>"),
        ("unsnooze", "ID", "/budget list", "/budget unsnooze <id>"),
        ("unsnooze 3.5", "`3.5`", "budget ID", "/budget unsnooze <id>"),
        ("history x", "`x`", "budget ID", "/budget history [id]"),
        ("history 3 4", "`4`", "doesn't take", "/budget history [id]"),
        ("list 3", "`3`", "doesn't take", "/budget list"),
        ("list pubic", "`pubic`", "Did you mean `public`?", "/budget list"),
        ("help nope", "`nope`", "help topic", "/budget help"),
        ("help adde", "`adde`", "Did you mean `add`?", "/budget help"),
        # snooze
        ("snooze", "ID", "/budget list", "/budget snooze <id> <DURATION>"),
        ("snooze 3", "how long", "`until-reset`", "/budget snooze <id> <DURATION>"),
        ("snooze 3 0m", "`0m`", "longer", "/budget snooze <id>"),
        ("snooze 3 91d", "`91d`", "90 days", "/budget snooze <id>"),
        ("snooze 3 2161h", "`2161h`", "90 days", "/budget snooze <id>"),
        ("snooze 3 99999999999999999999d", "`9999", "90 days", "/budget snooze <id>"),
        ("snooze 3 30s", "`30s`", "duration", "/budget snooze <id>"),
        ("snooze 3 30m1h", "`30m1h`", "duration", "/budget snooze <id>"),
        ("snooze 3 h", "`h`", "duration", "/budget snooze <id>"),
        ("snooze 3 until-rest", "`until-rest`", "Did you mean `until-reset`?", "/budget snooze"),
        ("snooze 3 4h 5h", "`5h`", "doesn't take", "/budget snooze <id>"),
        ("snooze #3 4h", "`#3`", "write `3`", "/budget snooze <id>"),
        # digest
        ("digest", "`09:00`", "`off`", "/budget digest <HH:MM>"),
        ("digest 25:00", "`25:00`", "24-hour", "/budget digest <HH:MM>"),
        ("digest 09:60", "`09:60`", "24-hour", "/budget digest <HH:MM>"),
        ("digest 9am", "`9am`", "HH:MM", "/budget digest <HH:MM>"),
        ("digest 0900", "`0900`", "HH:MM", "/budget digest <HH:MM>"),
        ("digest 09:00 #a #b", "`#a`", "`#b`", "/budget digest <HH:MM>"),
        ("digest 09:00 daily", "`daily`", "doesn't take", "/budget digest <HH:MM>"),
        ("digest 09:00 monthly mon", "`mon`", "1st", "[weekly [<day>]|monthly]"),
        ("digest 09:00 fri", "`fri`", "goes with `weekly`", "[weekly [<day>]|monthly]"),
        ("digest 09:00 weekly monthly", "`weekly`", "contradict", "/budget digest <HH:MM>"),
        ("digest 09:00 weekly weekly", "twice", "give it once", "/budget digest <HH:MM>"),
        ("digest 09:00 weekly fri mon", "`mon`", "one day", "/budget digest <HH:MM>"),
        ("digest 09:00 fri monthly", "`fri`", "1st", "/budget digest <HH:MM>"),
        ("digest 09:00 weekly frday", "`frday`", "Did you mean `friday`?", "/budget digest"),
        ("digest 09:00 weekyl", "`weekyl`", "Did you mean `weekly`?", "/budget digest"),
        ("digest 09:00 montly", "`montly`", "Did you mean `monthly`?", "/budget digest"),
        ("digest off weekly", "`weekly`", "doesn't take", "/budget digest off"),
        ("digest off monthly #a", "`monthly`", "doesn't take", "/budget digest off"),
        # timezone
        ("timezone", "IANA", "`Europe/Paris`", "/budget timezone <IANA name>"),
        ("timezone Mars/Olympus", "`Mars/Olympus`", "timezone", "/budget timezone"),
        ("timezone Europe/Pari", "`Europe/Pari`", "Did you mean `Europe/Paris`?", "/budget tim"),
        ("timezone ../../etc/passwd", "`../../etc/passwd`", "timezone", "/budget timezone"),
        ("timezone Europe", "`Europe`", "timezone", "/budget timezone"),
        ("timezone UTC Europe/Paris", "`Europe/Paris`", "doesn't take", "/budget timezone"),
    ],
)
def test_budget_errors_quote_the_offending_token(
    text: str, offending: str, also: str, usage: str
) -> None:
    result = parse_budget(text)
    assert isinstance(result, GrammarError), result
    assert offending in result.message
    assert also in result.message
    assert usage in result.usage


def test_error_for_add_shows_the_spec_example() -> None:
    result = parse_budget("add 12k montly")
    assert isinstance(result, GrammarError)
    assert result.usage == usage_for("add")
    assert SPEC_EXAMPLE in result.usage
    assert result.text == f"{result.message}\n*Usage:* {result.usage}"


def test_unclosed_quote_still_shows_the_subcommand_form() -> None:
    result = parse_budget('edit 3 project:"Game Art')
    assert isinstance(result, GrammarError)
    assert result.usage == usage_for("edit")


def test_error_tokens_are_shortened_and_safe_for_code_spans() -> None:
    result = parse_budget("add 5k daily " + "x" * 500 + "`y")
    assert isinstance(result, GrammarError)
    assert "x" * 500 not in result.message
    assert "…`" in result.message
    weird = parse_budget("add 5k daily a`b")
    assert isinstance(weird, GrammarError)
    assert "`a'b`" in weird.message


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

GRAMMAR_TOKENS = [
    *SUBCOMMANDS,
    *(p.value for p in PeriodKind),
    *(r.value for r in RangePreset),
    "public",
    "forecast",
    "no-forecast",
    "at",
    "50,80,100",
    "50,",
    ",80",
    "1000",
    "1001",
    "0",
    "team",
    "project",
    "user",
    "model",
    "project:Marketing",
    'project:"Game Art"',
    "project:“Game Art”",
    "project:",
    "user:<@U123ABC|ana>",
    "<@U123ABC>",
    "<mailto:a@b.com|a@b.com>",
    "key:ci",
    "model:m1",
    "team:",
    "#gen-ai-spend",
    "<#C123ABC|gen-ai-spend>",
    "<#C123ABC>",
    "#",
    "12k",
    "12.5k",
    "1,500",
    "1,50",
    "-5",
    "2m",
    "nan",
    "3",
    "#3",
    "30m",
    "1h30m",
    "until-reset",
    "09:00",
    "off",
    "Europe/Paris",
    "2026-11-01..2026-11-30",
    "2026-02-30..2026-03-01",
    '"',
    "“",
    "”",
    "<",
    ">",
    "&amp;",
    "&lt;",
    "low",
    "normal",
    "high",
    "quiet",
    "mon",
    "Friday",
    "sun",
    "tues",
]
SEPARATORS = st.sampled_from([" ", "  ", "\t", "\n", "\xa0"])
JUNK = st.text(max_size=6)
TOKEN_SOUP = st.lists(
    st.one_of(
        st.sampled_from(GRAMMAR_TOKENS), JUNK, st.sampled_from(GRAMMAR_TOKENS).map(str.upper)
    ),
    max_size=9,
)


@st.composite
def command_text(draw: st.DrawFn) -> str:
    """Grammar tokens, their upper-case forms and junk, joined by assorted whitespace."""
    tokens = draw(TOKEN_SOUP)
    return "".join(token + draw(SEPARATORS) for token in tokens)


def check_invariants(result: object) -> None:
    """What every result must satisfy, whatever the input."""
    if isinstance(result, GrammarError):
        assert isinstance(result.message, str) and result.message.strip()
        assert isinstance(result.usage, str) and result.usage.startswith("`/")
        return
    public = getattr(result, "public", None)
    assert isinstance(public, bool)
    budget_id = getattr(result, "budget_id", None)
    assert budget_id is None or (isinstance(budget_id, int) and budget_id > 0)
    match result:
        case UsageRequest(range=DateRange() as span):
            assert 1 <= span.days <= MAX_RANGE_DAYS
            assert span.start <= span.end
        case UsageRequest(range=RangePreset()):
            pass
        case BudgetAdd():
            assert 0 < result.limit <= MAX_LIMIT
            assert result.limit.is_finite()
            assert_thresholds(result.thresholds)
        case BudgetEdit():
            assert result.limit is None or 0 < result.limit <= MAX_LIMIT
            if result.thresholds is not None:
                assert_thresholds(result.thresholds)
            given = (result.limit, result.period, result.scope, result.channel, result.thresholds)
            assert any(v is not None for v in given) or result.forecast is not None
        case BudgetSnooze(duration=timedelta() as duration):
            assert timedelta(0) < duration <= MAX_SNOOZE
        case BudgetTimezone():
            zoneinfo.ZoneInfo(result.name)
        case BudgetDigest(at=time() as at):
            assert at.second == 0
            assert result.cadence in (PeriodKind.DAILY, PeriodKind.WEEKLY, PeriodKind.MONTHLY)
            # A day exactly for a weekly digest, and one of the seven.
            assert (result.weekday is not None) == (result.cadence is PeriodKind.WEEKLY)
            assert result.weekday is None or 0 <= result.weekday <= 6
        case BudgetDigest(at=None):
            # `off` turns off whatever the channel has: it takes no schedule.
            assert (result.cadence, result.weekday, result.quiet) == (PeriodKind.DAILY, None, False)
        case BudgetWatch():
            assert result.sensitivity in (None, "low", "normal", "high")
            if result.off:
                assert result.sensitivity is None
        case (
            BudgetList()
            | BudgetHelp()
            | BudgetHistory()
            | BudgetRemove()
            | BudgetUnsnooze()
            | BudgetSnooze()
            | BudgetDigest()
            | OpenBudgetModal()
            | BudgetConnect()
            | BudgetDisconnect()
            | BudgetTest()
        ):
            pass
        case _:
            pytest.fail(f"unexpected result type: {result!r}")


def assert_thresholds(thresholds: tuple[int, ...]) -> None:
    assert thresholds
    assert list(thresholds) == sorted(set(thresholds))
    assert all(1 <= t <= 1000 for t in thresholds)


@FUZZ
@given(st.text())
@example("")
@example('"')
@example("<" * 50)
@example("add 1" + "0" * 5000 + " daily")
@example("snooze 1 " + "9" * 5000 + "d")
def test_any_text_parses_or_errors_never_raises(text: str) -> None:
    check_invariants(parse_usage(text))
    check_invariants(parse_budget(text))
    check_invariants(parse_budget("add " + text))


@FUZZ
@given(command_text())
def test_grammar_token_soup_never_raises(text: str) -> None:
    check_invariants(parse_usage(text))
    check_invariants(parse_budget(text))


@FUZZ
@given(
    st.sampled_from(["add", "edit 3", "digest", "digest 09:00", "snooze 3", "history", "timezone"]),
    command_text(),
)
def test_subcommand_token_soup_never_raises(subcommand: str, rest: str) -> None:
    check_invariants(parse_budget(f"{subcommand} {rest}"))


@FUZZ
@given(st.integers(1, 10**12), st.sampled_from(["plain", "grouped", "k", "m"]))
def test_limit_round_trips(cu: int, spelling: str) -> None:
    if spelling == "plain":
        text = str(cu)
    elif spelling == "grouped":
        text = f"{cu:,}"
    elif spelling == "k":
        text = f"{Decimal(cu) / 1000}k"
    else:
        text = f"{Decimal(cu) / 1_000_000}M"
    result = budget_ok(f"add {text} billing")
    assert isinstance(result, BudgetAdd)
    assert result.limit == cu


@FUZZ
@given(st.lists(st.integers(-5, 1200), min_size=1, max_size=8), st.booleans())
def test_thresholds_sorted_unique_or_rejected(values: list[int], spaced: bool) -> None:
    text = (", " if spaced else ",").join(map(str, values))
    result = parse_budget(f"add 5k daily at {text}")
    if all(1 <= v <= 1000 for v in values):
        assert isinstance(result, BudgetAdd)
        assert result.thresholds == tuple(sorted(set(values)))
    else:
        assert isinstance(result, GrammarError)
        bad = next(v for v in values if not 1 <= v <= 1000)
        assert str(bad).lstrip("-") in result.message


@FUZZ
@given(st.dates(date(2000, 1, 1), date(2099, 1, 1)), st.integers(-3, 150))
def test_date_ranges_within_120_days_round_trip(start: date, length: int) -> None:
    end = start + timedelta(days=length - 1)
    result = parse_usage(f"{start.isoformat()}..{end.isoformat()}")
    if 1 <= length <= MAX_RANGE_DAYS:
        assert isinstance(result, UsageRequest)
        assert result.range == DateRange(start, end)
        assert isinstance(result.range, DateRange)
        assert result.range.days == length
    else:
        assert isinstance(result, GrammarError)


NAME = st.text(
    st.characters(blacklist_categories=["Cs", "Cc", "Zs", "Zl", "Zp"], blacklist_characters='"“”'),
    min_size=1,
    max_size=20,
).filter(lambda s: s.strip() == s and s != "")


@FUZZ
@given(
    st.lists(NAME, min_size=1, max_size=3).map(" ".join),
    st.sampled_from(list(ScopeKind)[1:]),
    st.sampled_from([('"', '"'), ("“", "”")]),
)
def test_quoted_names_survive_slack_escaping(
    name: str, kind: ScopeKind, quotes: tuple[str, str]
) -> None:
    opening, closing = quotes
    if kind is ScopeKind.USER and name.startswith("<"):
        return  # `<@…>` and `<mailto:…>` are Slack's forms, never typed (Slack escapes `<`)
    typed = slack_escape(f"{kind.value}:{opening}{name}{closing}")
    result = budget_ok(f"add 5k daily {typed}")
    assert isinstance(result, BudgetAdd)
    assert result.scope == ScopeRef(kind, name)


@FUZZ
@given(st.integers(0, 95), st.integers(0, 30), st.integers(0, 300))
def test_snooze_combinations(days: int, hours: int, minutes: int) -> None:
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    if not parts:
        parts = ["0m"]
    result = parse_budget(f"snooze 1 {''.join(parts)}")
    total = timedelta(days=days, hours=hours, minutes=minutes)
    if timedelta(0) < total <= MAX_SNOOZE:
        assert result == BudgetSnooze(1, total)
    else:
        assert isinstance(result, GrammarError)
        assert "".join(parts) in result.message


@FUZZ
@given(st.integers(0, 30), st.integers(0, 70), st.booleans())
def test_digest_times(hour: int, minute: int, padded: bool) -> None:
    text = f"{hour:02d}:{minute:02d}" if padded else f"{hour}:{minute:02d}"
    result = parse_budget(f"digest {text}")
    if hour < 24 and minute < 60:
        assert result == BudgetDigest(time(hour, minute))
    else:
        assert isinstance(result, GrammarError)
        assert f"`{text}`" in result.message


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(zoneinfo.available_timezones())), st.booleans())
def test_every_iana_timezone_is_accepted(name: str, shout: bool) -> None:
    result = parse_budget(f"timezone {name.upper() if shout else name}")
    assert isinstance(result, BudgetTimezone)
    assert zoneinfo.ZoneInfo(result.name).key == result.name
    assert result.name.casefold() == name.casefold()


def test_digest_quiet_skips_days_without_spend() -> None:
    request = parse_budget("digest 09:00 <#C123|spend> quiet")
    assert isinstance(request, BudgetDigest)
    assert request.quiet and request.channel == ChannelRef(id="C123", name="spend")
    assert parse_budget("digest 09:00").quiet is False  # type: ignore[union-attr]
    refused = parse_budget("digest off quiet")
    assert isinstance(refused, GrammarError) and "quiet" in refused.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("watch", BudgetWatch()),
        ("watch high", BudgetWatch(sensitivity="high")),
        (
            "WATCH Low <#C42|finance>",
            BudgetWatch(channel=ChannelRef("C42", "finance"), sensitivity="low"),
        ),
        (
            "watch <#C42> normal public",
            BudgetWatch(channel=ChannelRef("C42"), sensitivity="normal", public=True),
        ),
        ("watch off", BudgetWatch(off=True)),
        ("watch off <#C42>", BudgetWatch(off=True, channel=ChannelRef("C42"))),
    ],
)
def test_watch(text: str, expected: BudgetWatch) -> None:
    assert parse_budget(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("watch loud", "doesn't take `loud`"),
        ("watch hihg", "Did you mean `high`?"),
        ("watch high low", "the sensitivity twice"),
        ("watch off high", "takes no sensitivity"),
        ("watch <#C1> <#C2>", "the channel twice"),
        ("watch 3", "doesn't take `3`"),
    ],
)
def test_watch_mistakes_are_explained(text: str, says: str) -> None:
    result = parse_budget(text)
    assert isinstance(result, GrammarError)
    assert says in result.message, result.message
    assert result.usage.startswith("`/budget watch")


@pytest.mark.parametrize(
    ("weekday", "name"),
    list(enumerate(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])),
)
def test_a_weekly_digest_day_is_its_name_or_three_letters_in_any_case(
    weekday: int, name: str
) -> None:
    for form in (name, name[:3], name.upper(), name[:3].capitalize(), name.capitalize()):
        request = parse_budget(f"digest 07:45 weekly {form}")
        assert request == BudgetDigest(time(7, 45), cadence=WEEKLY, weekday=weekday), form


@pytest.mark.parametrize(
    ("text", "expected"), [("test 3", BudgetTest(3)), ("TEST 12 public", BudgetTest(12, True))]
)
def test_test(text: str, expected: BudgetTest) -> None:
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["test", "test x", "test 3 4", "test #3 now"])
def test_test_mistakes_show_the_usage(text: str) -> None:
    refused = parse_budget(text)
    assert isinstance(refused, GrammarError)
    assert refused.usage.startswith("`/budget test <id>`")
