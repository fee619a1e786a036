"""Names from Scenario are data (SPEC §5): in every renderer, a project, model, member or key
called `<!channel>` pings nobody, mentions nobody and hides no link — and is still shown.

Every mrkdwn text of a message (sections, fields, context elements) and its top-level `text`
(Slack parses it as mrkdwn for notifications) is checked; plain_text objects are not parsed
by Slack, so there the name must appear as it is, not escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.budgets.backtest import Backtest
from bot.budgets.culprits import Attribution, Culprit, JobCulprit
from bot.budgets.evaluate import AlertKind, BudgetRule
from bot.budgets.periods import digest_span, period_at
from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.commands.requests import RangePreset
from bot.messages import budgets as budget_views
from bot.messages import home, modals, watch
from bot.messages.backtest import form_preview_text
from bot.messages.digest import digest_message
from bot.messages.history import history_message
from bot.messages.mrkdwn import escape
from bot.messages.names import describe
from bot.messages.usage import Filter, UsageView, usage_message
from bot.reports.digest import DayAlert, DigestData
from bot.reports.status import BudgetStatus
from bot.scenario.names import Ambiguous, Entry, Unknown
from bot.store.alerts import AlertRow, EpisodeFinding
from bot.store.audit import AuditEntry
from bot.store.budgets import Budget
from bot.store.digests import Digest

Json = dict[str, Any]
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
TZ = "Europe/Paris"
APP = "https://app.example"

PROJECT = "<!channel> <https://evil|Marketing>"
MODEL = "*bold* <@U123>"
MEMBER = "Ana & <Bob> | Co"
KEY = "<!here> CI <@U999|boss>"
SERVER = "Scenario said <!everyone> <https://evil.example|click>"
HOSTILE = (PROJECT, MODEL, MEMBER, KEY)
# What a hostile name must never produce in mrkdwn: a mention, a broadcast, a (hidden) link;
# nor a name escaped twice. (The bot's own `<@U_ADMIN>`, who did what, is fine.)
FORBIDDEN = (
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U123",
    "<@U999",
    "<https://evil",
    "&amp;lt;",
    "&amp;gt;",
)


# ---------------------------------------------------------------------------------------------
# Walking a message
# ---------------------------------------------------------------------------------------------


def _walk(node: Any) -> Iterator[Json]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def mrkdwn_texts(message: Json) -> list[str]:
    """The message's top-level `text` and every mrkdwn text object in its blocks."""
    found = [message["text"]] if isinstance(message.get("text"), str) else []
    found += [
        obj["text"] for obj in _walk(message.get("blocks", [])) if obj.get("type") == "mrkdwn"
    ]
    return found


def plain_texts(message: Json) -> list[str]:
    return [
        obj["text"] for obj in _walk(message.get("blocks", [])) if obj.get("type") == "plain_text"
    ]


def assert_inert(message: Json, *names: str) -> None:
    """No mention, broadcast or hidden link anywhere mrkdwn is parsed, no text escaped twice,
    and every name still visible (escaped) somewhere in the mrkdwn."""
    texts = mrkdwn_texts(message)
    assert texts
    for text in texts:
        for bad in FORBIDDEN:
            assert bad not in text, f"{bad!r} in {text!r}"
    everything = "\n".join(texts)
    for name in names:
        shown = escape(name)
        assert shown in everything or shown.replace("|", "¦") in everything, name
    for text in plain_texts(message):  # not parsed by Slack: never escaped
        assert "&lt;" not in text and "&gt;" not in text and "&amp;" not in text, text


# ---------------------------------------------------------------------------------------------
# Data with hostile names
# ---------------------------------------------------------------------------------------------


def make_budget(budget_id: int = 1, name: str = PROJECT, **changes: Any) -> Budget:
    budget = Budget(
        id=budget_id,
        workspace_id="T1",
        scope=Scope(ScopeKind.PROJECT, "proj_mkt"),
        scope_name=name,
        period=PeriodKind.MONTHLY,
        limit_cu=12_000.0,
        thresholds=(50, 90, 100),
        forecast=True,
        channel_id="C123ABC",
        created_by="U_ADMIN",
        created_at=NOW,
        updated_at=NOW,
    )
    return replace(budget, **changes)


def make_status(budget: Budget, spend: float | None = 6_000.0) -> BudgetStatus:
    return BudgetStatus(
        budget=budget,
        period=period_at(budget.period, NOW, TZ) if spend is not None else None,
        spend=spend,
        forecast=None,
        alerted_level=None,
        snoozed_until=None,
        delivery_problem=None,
    )


def make_alert(budget_id: int = 1) -> AlertRow:
    return AlertRow(
        id=7,
        budget_id=budget_id,
        period_key="2026-11",
        kind=AlertKind.THRESHOLD,
        level=80,
        spend_cu=9_600.0,
        limit_cu=12_000.0,
        fired_at=NOW - timedelta(hours=1),
        resolved_at=None,
    )


def culprits(total: float = 1_500.0) -> tuple[tuple[Culprit, ...], ...]:
    projects = (Culprit("proj_1", PROJECT, total / 2), Culprit("proj_2", "Game Art", total / 2))
    users = (
        Culprit("apiu_1", f"API key {KEY}", total / 2, f"{APP}/settings/api", is_api_key=True),
        Culprit("u_1", MEMBER, total / 2),
    )
    models = (Culprit("model_1", MODEL, total, f"{APP}/models/model_1"),)
    return projects, users, models


def usage_view(name: str | None = None) -> UsageView:
    projects, users, models = culprits()
    if name is not None:
        projects = (Culprit("proj_1", name, 1_500.0),)
        users = (Culprit("u_1", name, 1_500.0),)
        models = (Culprit("model_1", name, 1_500.0, f"{APP}/models/model_1"),)
    return UsageView(
        range=RangePreset.LAST_24H,
        start=NOW - timedelta(hours=24),
        end=NOW,
        tz=TZ,
        total_cu=1_500.0,
        previous_cu=1_000.0,
        projects=projects,
        users=users,
        models=models,
        series=(1.0, 2.0, 3.0),
        filters=(
            Filter("project", name or PROJECT),
            Filter("model", name or MODEL, f"{APP}/models/model_1"),
        ),
    )


def digest_data(name: str = PROJECT) -> DigestData:
    projects, users, models = culprits(1_200.0)
    if name != PROJECT:
        projects = (Culprit("proj_1", name, 1_200.0),)
    return DigestData(
        span=digest_span(PeriodKind.DAILY, None, date(2026, 11, 26)),
        tz=TZ,
        spend=1_200.0,
        average=1_000.0,
        budgets=[make_status(make_budget(name=name)), make_status(make_budget(2, name), None)],
        projects=list(projects),
        users=list(users),
        models=list(models),
        alerts=[DayAlert(f"#1 {name} monthly", 80, "threshold", NOW - timedelta(hours=20))],
        chart_days=[],
        chart={},
        limit=None,
        notes=[f"Budget spend unavailable: {SERVER}"],
    )


def budget_messages(name: str) -> list[Json]:
    """Every `/budget` answer that names a budget, the list and history included."""
    budget = make_budget(name=name)
    before = make_budget(name="Old name", scope=Scope(ScopeKind.MODEL, "model_old"))
    status = make_status(budget)
    many = [make_status(make_budget(i, name)) for i in range(1, 15)]  # the compact list
    audit = [
        AuditEntry(1, "T1", "U_ADMIN", NOW, "budget.add", "budget:1", None, budget.as_audit()),
        AuditEntry(
            2, "T1", "U_ADMIN", NOW, "budget.edit", "budget:1", before.as_audit(), budget.as_audit()
        ),
        AuditEntry(3, "T1", "U_ADMIN", NOW, "budget.remove", "budget:1", budget.as_audit(), None),
        AuditEntry(4, "T1", "U_ADMIN", NOW, "budget.snooze", "budget:1", {}, {}),
    ]
    return [
        budget_views.budget_list([status], tz=TZ, now=NOW),
        budget_views.budget_list(many, tz=TZ, now=NOW),
        budget_views.budget_list([make_status(budget, None)], tz=TZ, now=NOW, error=SERVER),
        budget_views.saved_budget(status, tz=TZ, now=NOW),
        budget_views.saved_budget(status, tz=TZ, now=NOW, before=before, error=SERVER),
        budget_views.saved_budget(status, tz=TZ, now=NOW, before=budget),
        budget_views.remove_confirmation(budget),
        budget_views.removed(budget, "U_ADMIN"),
        budget_views.kept(budget, budget.id),
        budget_views.snoozed(budget, NOW + timedelta(days=1), TZ, until_reset=False),
        budget_views.unsnoozed(budget, was_snoozed=True),
        budget_views.unsnoozed(budget, was_snoozed=False),
        history_message([make_alert()], audit, labels={1: budget.label}, tz=TZ, budget_id=None),
    ]


def home_tab(name: str) -> Json:
    budget = make_budget(name=name)
    return home.home_view(
        statuses=[make_status(budget)],
        scenario_error=SERVER,
        recent=[make_alert()],
        labels={1: budget.label},
        digests=[Digest(1, "T1", "C123ABC", time(9), "line", None)],
        tz=TZ,
        now=NOW,
    )


def modal_views(name: str) -> list[Json]:
    budget = make_budget(name=name)
    form = modals.budget_modal_view(team_id="T1", channel_id="C1", budget=budget)
    # The form once its backtest preview is shown: it names the scope it replayed.
    found = Backtest(NOW - timedelta(days=30), NOW, (), 6_000.0, NOW, reads=12)
    preview = form_preview_text(
        found, BudgetRule(12_000.0, (50,)), PeriodKind.MONTHLY, budget.scope, name, TZ
    )
    return [
        form,
        form
        | {
            "blocks": [
                modals.preview_block(preview) if b.get("block_id") == modals.BLOCK_PREVIEW else b
                for b in form["blocks"]
            ]
        },
        modals.saved_view(budget, added=True),
        modals.saved_view(budget, added=False),
        modals.unchanged_view(budget),
    ]


# ---------------------------------------------------------------------------------------------
# Each renderer, with a hostile name in every field that comes from Scenario
# ---------------------------------------------------------------------------------------------


def test_usage_report() -> None:
    message = usage_message(usage_view())
    assert_inert(message, PROJECT, MODEL, MEMBER, KEY)


@pytest.mark.parametrize("index", range(len(budget_messages(PROJECT))))
def test_budget_answers(index: int) -> None:
    message = budget_messages(PROJECT)[index]
    assert_inert(message, PROJECT)


def test_budget_answers_name_what_a_server_error_says_without_obeying_it() -> None:
    listed = budget_views.budget_list(
        [make_status(make_budget(), None)], tz=TZ, now=NOW, error=SERVER
    )
    assert_inert(listed, SERVER)


def test_a_scope_change_in_the_history_names_both_scopes_escaped() -> None:
    before = make_budget(name=MODEL, scope=Scope(ScopeKind.MODEL, "model_1"))
    after = make_budget(name=PROJECT)
    entry = AuditEntry(
        1, "T1", "U_ADMIN", NOW, "budget.edit", "budget:1", before.as_audit(), after.as_audit()
    )
    message = history_message([], [entry], labels={}, tz=TZ)
    assert_inert(message, PROJECT, MODEL)
    assert "<@U_ADMIN>" in "\n".join(mrkdwn_texts(message))  # the bot's own mention stays


def test_home_tab() -> None:
    view = home_tab(PROJECT)
    assert_inert({"blocks": view["blocks"]}, PROJECT, SERVER)


def test_modals_escape_mrkdwn_but_not_plain_text() -> None:
    for view in modal_views(PROJECT):
        assert_inert({"blocks": view["blocks"]}, PROJECT)
    form = modals.budget_modal_view(team_id="T1", channel_id="C1", budget=make_budget())
    name = next(b for b in form["blocks"] if b.get("block_id") == modals.BLOCK_SCOPE_NAME)
    assert name["element"]["initial_value"] == PROJECT  # a plain_text input: as it is


def test_digest() -> None:
    message = digest_message(digest_data())
    assert message is not None
    assert_inert(message, PROJECT, MODEL, MEMBER, KEY, SERVER)


def test_candidates_of_an_ambiguous_or_unknown_name() -> None:
    entries = tuple(Entry(f"id{i}", name) for i, name in enumerate(HOSTILE))
    for result in (Ambiguous("<!channel>", entries), Unknown("<@U1>", entries)):
        text = describe(result, "project")
        assert_inert({"text": text}, *HOSTILE)


def test_a_field_error_of_the_form_shows_names_as_they_are() -> None:
    text = describe(Unknown("x", (Entry("p1", PROJECT),)), "project")
    assert PROJECT in modals.field_error(text)  # plain text: Slack shows it literally


# ---------------------------------------------------------------------------------------------
# Any name at all
# ---------------------------------------------------------------------------------------------

# The bot's own syntax in these messages: channel links, admins' mentions, Scenario links.
_OWN = re.compile(r"<#C[A-Z0-9]+>|<@U_ADMIN>|<https://app\.example/[^|<>]*\|[^<>]*>")


def rendered(name: str) -> list[Json]:
    data = digest_data(name)
    message = digest_message(data)
    assert message is not None
    views = [{"blocks": v["blocks"]} for v in [home_tab(name), *modal_views(name)]]
    return [message, usage_message(usage_view(name)), *budget_messages(name), *views]


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40) | st.sampled_from(HOSTILE))
def test_any_name_renders_without_markup_of_its_own(name: str) -> None:
    shown = escape(name)
    twice = escape(shown)
    for message in rendered(name):
        texts = mrkdwn_texts(message)
        for text in texts:
            rest = _OWN.sub("", text)
            assert "<" not in rest and ">" not in rest, (name, text)
            assert twice == shown or twice not in text, (name, text)  # escaped exactly once
        everything = "\n".join(texts)
        assert shown in everything or shown.replace("|", "¦") in everything, name
        for text in plain_texts(message):
            if name in text or escape(name) in text:
                assert name in text


def episode_messages(name: str) -> list[Json]:
    """A watch episode about a key called `name`, on a model and project with hostile
    names, open and then over, with its replies."""
    finding = EpisodeFinding(
        entity="key:apiu_1",
        rule="velocity",
        usual_cu=10.0,
        peak_cu=900.0,
        since=NOW - timedelta(hours=1),
        last_seen=NOW,
        name=f"🔑 {name}",
        explains=(f"model {MODEL}",),
        projects=(PROJECT,),
    )
    model = Culprit("m1", MODEL, 800.0, "https://app.example/models/m1")
    key = Culprit("apiu_1", name, 900.0, "https://app.example/settings/api", is_api_key=True)
    job = JobCulprit("job_1", 70.0, MEMBER, model, key, ("https://app.example/assets?x=1",))
    view = watch.EpisodeView(
        alert_id=3,
        opened_at=NOW,
        finding=finding,
        spend_cu=600.0,
        tz=TZ,
        attribution=Attribution(models=(model,), users=(key,), jobs=(job,)),
        open_url="https://app.example/settings/api",
    )
    return [
        watch.episode_message(view),
        watch.episode_message(replace(view, ended_at=NOW, expected=("U_ADMIN", NOW))),
        watch.ended_reply(finding, TZ),
        watch.expected_reply("U_ADMIN", finding, NOW, TZ),
        *(
            watch.episode_message(replace(view, finding=replace(finding, rule=rule)))
            for rule in ("new", "off-hours")
        ),
    ]


def test_watch_episodes() -> None:
    for message in episode_messages(KEY):
        assert_inert(message, KEY)
    first = episode_messages(KEY)[0]
    assert_inert(first, PROJECT, MODEL)
    # The header is plain text: the name as it is, not escaped.
    assert first["blocks"][0]["text"]["text"].startswith(f"🚨 🔑 {KEY} is spending 60×")
