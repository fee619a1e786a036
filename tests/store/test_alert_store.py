"""The alert store against a real temporary SQLite file: one alert per budget and period
(rolling windows: per episode) with its events, the history of levels fired, re-arming on
an edit, snoozes and acknowledgements on the open alert, and the m002 migration that turns
the old `alert_state` rows into alerts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from bot.budgets.culprits import Attribution, Culprit, JobCulprit
from bot.budgets.evaluate import (
    FORECAST_LEVEL,
    AlertChange,
    AlertKind,
    AlertState,
    Event,
    EventKind,
)
from bot.budgets.forecast import Forecast
from bot.budgets.periods import Period, next_period, period_at, previous_period
from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.jobs.check import decide, record_decisions
from bot.store import alerts, audit, snoozes
from bot.store.alerts import ACTION_TTL, ROLLING_TTL
from bot.store.budgets import Budget, NewBudget, create_budget, find_budget, update_budget
from bot.store.db import immediate, migrate, open_db, to_text
from migrations.migrations import migrations

T0 = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
WS = "T1"
OTHER_WS = "T2"
MONTH = period_at(PeriodKind.MONTHLY, T0, "UTC")  # monthly:2026-11@UTC, ends 2026-12-01
ROLLING = period_at(PeriodKind.ROLLING_24H, T0, "UTC")  # rolling:24h
M002 = "m002_one_message_per_budget_and_period"


def make_budget(
    db: Database,
    period: PeriodKind = PeriodKind.MONTHLY,
    *,
    workspace: str = WS,
    limit: float = 1000.0,
    forecast: bool = False,
) -> Budget:
    new = NewBudget(
        workspace_id=workspace,
        period=period,
        limit_cu=limit,
        channel_id="C1",
        created_by="UADMIN",
        thresholds=(50, 80, 100),
        forecast=forecast,
    )
    return create_budget(db, new, now=T0)


def write(
    db: Database,
    budget: Budget,
    change: AlertChange,
    *,
    period: Period = MONTH,
    spend: float = 600.0,
    now: datetime = T0,
    projection: Forecast | None = None,
    attribution: Attribution | None = None,
) -> int:
    with immediate(db):
        return alerts.apply_change(
            db,
            budget_id=budget.id,
            channel_id=budget.channel_id,
            change=change,
            period=period,
            spend_cu=spend,
            limit_cu=budget.limit_cu,
            projection=projection,
            attribution=attribution,
            now=now,
        )


def opening(key: str, *levels: int) -> AlertChange:
    """A new alert that passed `levels`, announcing the highest."""
    state = AlertState(key, frozenset(levels))
    return AlertChange(state, (Event(EventKind.LEVEL, max(levels)),), opens=True)


def check(
    db: Database, budget_id: int, spend: float, *, now: datetime, tz: str = "UTC"
) -> list[AlertChange]:
    """One check of a budget at a given spend, through the check job's own decide and
    record steps (without Scenario), in one transaction."""
    budget = find_budget(db, budget_id)
    assert budget is not None
    period = period_at(budget.period, now, tz)
    decisions, current = decide(db, budget, period, spend, now)
    with immediate(db):
        record_decisions(db, budget, period, decisions, current, spend, None, now)
    return list(decisions.changes)


def only_alert(db: Database) -> alerts.Alert:
    [row] = list(db.query("SELECT id FROM alerts"))
    alert = alerts.alert_by_id(db, row["id"])
    assert alert is not None
    return alert


def kinds(db: Database, alert_id: int) -> list[tuple[EventKind, int | None]]:
    return [(e.kind, e.level) for e in alerts.events_of(db, alert_id)]


def history(db: Database, budget_id: int) -> dict[tuple[str, AlertKind, int], alerts.AlertRow]:
    """The latest line of the history for each period, kind and level."""
    rows = alerts.recent_alerts(db, WS, budget_id=budget_id, limit=100)
    return {(r.period_key, r.kind, r.level): r for r in reversed(rows)}


# --- apply_change --------------------------------------------------------------------


def test_an_opening_change_creates_one_alert_with_its_events_and_history(db: Database) -> None:
    budget = make_budget(db)
    projection = Forecast(1400.0, 1900.0, 1.25, T0 + timedelta(days=3))
    attribution = Attribution(
        models=(Culprit("m1", "Flux", 500.0, "https://app/models/m1"),),
        users=(Culprit("k1", "CI key", 300.0, is_api_key=True),),
        jobs=(JobCulprit("j1", 120.0, "inference", None, None, ("https://app/a/1",)),),
        partial=True,
    )

    alert_id = write(
        db,
        budget,
        opening(MONTH.key, 50, 80),
        spend=850.0,
        projection=projection,
        attribution=attribution,
    )

    alert = only_alert(db)
    assert alert.id == alert_id
    assert alert.root_key == f"alert:{alert_id}"
    assert (alert.budget_id, alert.period_key, alert.channel_id) == (budget.id, MONTH.key, "C1")
    assert (alert.period_start, alert.period_end) == (MONTH.start, MONTH.end)
    assert alert.state == AlertState(MONTH.key, frozenset({50, 80}), False, False)
    assert (alert.spend_cu, alert.limit_cu) == (850.0, 1000.0)
    assert alert.projection == projection
    assert alert.attribution == attribution
    assert (alert.acknowledged_by, alert.acknowledged_at) == (None, None)
    assert (alert.opened_at, alert.closed_at) == (T0, None)
    assert alert.is_current(MONTH.end - timedelta(microseconds=1))
    assert not alert.is_current(MONTH.end)

    [event] = alerts.unpublished_events(db)
    assert event == alerts.AlertEvent(
        id=event.id,
        alert_id=alert_id,
        kind=EventKind.LEVEL,
        level=80,
        spend_cu=850.0,
        limit_cu=1000.0,
        actor=None,
        detail={},
        at=T0,
        expires_at=MONTH.end,  # a calendar period's message stops mattering when it ends
    )

    [fired] = alerts.recent_alerts(db, WS)
    assert (fired.budget_id, fired.period_key, fired.kind, fired.level) == (
        budget.id,
        MONTH.key,
        AlertKind.THRESHOLD,
        80,
    )
    assert (fired.spend_cu, fired.limit_cu, fired.fired_at, fired.resolved_at) == (
        850.0,
        1000.0,
        T0,
        None,
    )


def test_a_later_change_updates_the_same_alert_and_adds_its_events(db: Database) -> None:
    budget = make_budget(db, forecast=True)
    first_culprits = Attribution(models=(Culprit("m1", "Flux", 500.0),))
    alert_id = write(db, budget, opening(MONTH.key, 50), spend=600.0, attribution=first_culprits)
    later = T0 + HOUR
    state = AlertState(MONTH.key, frozenset({50, 80}), forecast=True)
    change = AlertChange(state, (Event(EventKind.LEVEL, 80), Event(EventKind.FORECAST)), False)

    assert write(db, budget, change, spend=850.0, now=later) == alert_id

    alert = only_alert(db)
    assert alert.state == state
    assert (alert.spend_cu, alert.opened_at, alert.root_key) == (850.0, T0, f"alert:{alert_id}")
    assert alert.attribution == first_culprits  # no new culprits: the old ones stay
    updated_at = db.execute("SELECT updated_at FROM alerts").fetchone()[0]
    assert updated_at == to_text(later)
    assert kinds(db, alert_id) == [
        (EventKind.LEVEL, 50),
        (EventKind.LEVEL, 80),
        (EventKind.FORECAST, None),
    ]
    assert [e.at for e in alerts.unpublished_events(db)] == [T0, later, later]
    assert set(history(db, budget.id)) == {
        (MONTH.key, AlertKind.THRESHOLD, 50),
        (MONTH.key, AlertKind.THRESHOLD, 80),
        (MONTH.key, AlertKind.FORECAST, FORECAST_LEVEL),
    }


def test_a_jump_past_several_levels_is_one_event_and_a_history_line_per_level(
    db: Database,
) -> None:
    budget = make_budget(db)

    [change] = check(db, budget.id, 900.0, now=T0)  # 0 % to 90 %: 50 and 80 at once

    alert = only_alert(db)
    assert alert.state.passed == {50, 80}
    assert kinds(db, alert.id) == [(EventKind.LEVEL, 80)]  # one message, at the highest
    assert change.events[0].levels == (50, 80)
    rows = history(db, budget.id)
    assert set(rows) == {
        (MONTH.key, AlertKind.THRESHOLD, 50),
        (MONTH.key, AlertKind.THRESHOLD, 80),
    }
    assert {(r.spend_cu, r.fired_at) for r in rows.values()} == {(900.0, T0)}


def test_a_rolling_episode_has_no_bounds_and_its_events_expire_a_day_later(
    db: Database,
) -> None:
    budget = make_budget(db, PeriodKind.ROLLING_24H)

    alert_id = write(db, budget, opening("rolling:24h#1", 50), period=ROLLING)

    alert = only_alert(db)
    assert (alert.id, alert.period_key) == (alert_id, "rolling:24h#1")
    assert (alert.period_start, alert.period_end) == (None, None)
    assert alert.is_current(T0 + timedelta(days=365))  # only closing it ends it
    [event] = alerts.events_of(db, alert_id)
    assert event.expires_at == T0 + ROLLING_TTL == T0 + timedelta(hours=24)


def test_back_under_resolves_the_history_at_and_above_its_level_and_closes_the_episode(
    db: Database,
) -> None:
    budget = make_budget(db, PeriodKind.ROLLING_24H)
    for hour, spend in enumerate((550.0, 850.0, 1050.0)):
        check(db, budget.id, spend, now=T0 + hour * HOUR)
    alert = only_alert(db)
    assert alert.state.passed == {50, 80, 100}

    [change] = check(db, budget.id, 700.0, now=T0 + 3 * HOUR)  # under 90 % of 80 and 100

    assert change.events == (Event(EventKind.BACK_UNDER, 80),)
    alert = only_alert(db)
    assert (alert.state.passed, alert.state.closed, alert.spend_cu) == ({50}, False, 700.0)
    rows = history(db, budget.id)
    key = "rolling:24h#1"
    assert rows[(key, AlertKind.THRESHOLD, 50)].resolved_at is None
    assert rows[(key, AlertKind.THRESHOLD, 80)].resolved_at == T0 + 3 * HOUR
    assert rows[(key, AlertKind.THRESHOLD, 100)].resolved_at == T0 + 3 * HOUR

    check(db, budget.id, 400.0, now=T0 + 4 * HOUR)  # under 90 % of 50: the episode ends

    alert = only_alert(db)
    assert alert.state == AlertState(key, frozenset(), False, closed=True)
    assert alert.closed_at == T0 + 4 * HOUR
    assert not alert.is_current(T0 + 4 * HOUR)
    assert alerts.open_alert_of(db, budget.id, T0 + 4 * HOUR) is None
    assert kinds(db, alert.id)[-2:] == [(EventKind.BACK_UNDER, 80), (EventKind.BACK_UNDER, 50)]
    rows = history(db, budget.id)
    assert rows[(key, AlertKind.THRESHOLD, 50)].resolved_at == T0 + 4 * HOUR
    assert rows[(key, AlertKind.THRESHOLD, 80)].resolved_at == T0 + 3 * HOUR  # kept


def test_a_level_fired_again_in_the_same_episode_is_a_new_line_of_the_history(
    db: Database,
) -> None:
    budget = make_budget(db, PeriodKind.ROLLING_24H)
    check(db, budget.id, 550.0, now=T0)
    check(db, budget.id, 850.0, now=T0 + HOUR)
    check(db, budget.id, 700.0, now=T0 + 2 * HOUR)  # back under 80

    [change] = check(db, budget.id, 900.0, now=T0 + 3 * HOUR)

    assert (change.opens, change.events) == (False, (Event(EventKind.LEVEL, 80),))
    assert db["alerts"].count == 1
    eighty = [
        (r.fired_at, r.spend_cu, r.resolved_at)
        for r in alerts.recent_alerts(db, WS, budget_id=budget.id)
        if r.level == 80
    ]
    assert eighty == [
        (T0 + 3 * HOUR, 900.0, None),  # newest first
        (T0 + HOUR, 850.0, T0 + 2 * HOUR),  # the first firing keeps its story
    ]
    assert db["alert_state"].count == 3


def test_after_an_episode_closes_the_next_crossing_opens_the_next_episode(db: Database) -> None:
    budget = make_budget(db, PeriodKind.ROLLING_24H)
    check(db, budget.id, 550.0, now=T0)
    check(db, budget.id, 400.0, now=T0 + HOUR)

    [change] = check(db, budget.id, 600.0, now=T0 + 2 * HOUR)

    assert change.opens
    current, episodes = alerts.current_alert(db, budget.id, ROLLING)
    assert current is not None
    assert (current.period_key, episodes, current.state.passed) == ("rolling:24h#2", 2, {50})
    assert current.root_key == f"alert:{current.id}"  # a new message
    assert alerts.open_alert_of(db, budget.id, T0 + 2 * HOUR) == current


# --- finding the alert ---------------------------------------------------------------


def test_current_alert_of_a_calendar_period_is_that_periods_alert_only(db: Database) -> None:
    budget = make_budget(db, PeriodKind.DAILY)
    other = make_budget(db, PeriodKind.DAILY)
    day = period_at(PeriodKind.DAILY, T0, "Etc/GMT+1")
    assert day.key == "daily:2026-11-26@Etc/GMT+1"
    write(db, budget, opening(previous_period(day).key, 50), period=previous_period(day))
    wanted = write(db, budget, opening(day.key, 50), period=day)
    write(db, other, opening(day.key, 80), period=day)
    for key in ("daily:2026-11-26@Etc/GMT+10", "daily:2026-11-26@Etc/GMT+1#1"):  # our key + more
        write(db, budget, opening(key, 80), period=day)

    current, episodes = alerts.current_alert(db, budget.id, day)

    assert current is not None
    assert (current.id, current.period_key, episodes) == (wanted, day.key, 0)
    assert alerts.current_alert(db, budget.id, next_period(day)) == (None, 0)


def test_current_alert_of_a_rolling_window_is_its_latest_episode_and_their_count(
    db: Database,
) -> None:
    budget = make_budget(db, PeriodKind.ROLLING_24H)
    other = make_budget(db, PeriodKind.ROLLING_24H)
    assert alerts.current_alert(db, budget.id, ROLLING) == (None, 0)
    write(db, budget, opening("rolling:24h#1", 50), period=ROLLING)
    latest = write(db, budget, opening("rolling:24h#2", 50), period=ROLLING)
    write(db, other, opening("rolling:24h#3", 50), period=ROLLING)
    write(db, budget, opening("rolling:7d#3", 50), period=ROLLING)
    write(db, budget, opening("rolling:24h", 50), period=ROLLING)  # no episode number

    current, episodes = alerts.current_alert(db, budget.id, ROLLING)

    assert current is not None
    assert (current.id, current.period_key, episodes) == (latest, "rolling:24h#2", 2)


@pytest.mark.parametrize("wildcard_key", ["rolling:2_h", "rolling:%", "rolling:24%"])
def test_a_key_with_like_wildcards_matches_only_its_own_episodes(
    db: Database, wildcard_key: str
) -> None:
    """The old LIKE-based lookup read `_` and `%` in a key as wildcards."""
    budget = make_budget(db, PeriodKind.ROLLING_24H)
    write(db, budget, opening("rolling:24h#1", 50), period=ROLLING)
    write(db, budget, opening("rolling:24h#2", 80), period=ROLLING)
    window = Period(PeriodKind.ROLLING_24H, T0 - timedelta(hours=24), T0, "UTC", wildcard_key)

    assert alerts.current_alert(db, budget.id, window) == (None, 0)
    own = write(db, budget, opening(f"{wildcard_key}#1", 50), period=window)
    current, episodes = alerts.current_alert(db, budget.id, window)
    assert (current.id if current else None, episodes) == (own, 1)
    assert alerts.current_alert(db, budget.id, ROLLING)[1] == 2


def test_open_alert_of_is_the_alert_still_current(db: Database) -> None:
    budget = make_budget(db)
    october = previous_period(MONTH)
    write(db, budget, opening(october.key, 50), period=october, now=october.start)
    assert alerts.open_alert_of(db, budget.id, T0) is None  # October has ended

    november = write(db, budget, opening(MONTH.key, 50))

    found = alerts.open_alert_of(db, budget.id, T0)
    assert found is not None and found.id == november
    assert alerts.open_alert_of(db, budget.id, MONTH.end) is None
    assert alerts.open_alert_of(db, budget.id + 1, T0) is None


def test_get_alert_only_finds_alerts_of_the_workspace(db: Database) -> None:
    mine = make_budget(db)
    theirs = make_budget(db, workspace=OTHER_WS)
    my_alert = write(db, mine, opening(MONTH.key, 50))
    their_alert = write(db, theirs, opening(MONTH.key, 50))

    found = alerts.get_alert(db, WS, my_alert)
    assert found is not None and found.budget_id == mine.id
    assert alerts.get_alert(db, WS, their_alert) is None  # a button value is untrusted
    assert alerts.get_alert(db, WS, 999) is None
    assert alerts.alert_by_id(db, their_alert) is not None  # the bot's own jobs see all


def test_saw_spend_records_what_the_check_saw_only_when_it_changed(db: Database) -> None:
    budget = make_budget(db)
    alert_id = write(db, budget, opening(MONTH.key, 50), spend=600.0)

    alerts.saw_spend(db, only_alert(db), 600.0, MONTH, now=T0 + HOUR)
    assert db.execute("SELECT updated_at FROM alerts").fetchone()[0] == to_text(T0)

    alerts.saw_spend(db, only_alert(db), 650.0, MONTH, now=T0 + 2 * HOUR)
    assert db.execute("SELECT updated_at FROM alerts").fetchone()[0] == to_text(T0 + 2 * HOUR)
    alert = only_alert(db)
    assert alert.spend_cu == 650.0
    assert (alert.period_start, alert.period_end) == (MONTH.start, MONTH.end)
    assert len(alerts.events_of(db, alert_id)) == 1  # seeing spend announces nothing


def test_saw_spend_gives_an_alert_without_bounds_its_calendar_periods_bounds(
    db: Database,
) -> None:
    """Alerts carried over by m002 have no bounds; the next check fills them in."""
    budget = make_budget(db)
    write(db, budget, opening(MONTH.key, 50), spend=600.0)
    db.execute("UPDATE alerts SET period_start = NULL, period_end = NULL")
    assert not only_alert(db).is_current(T0)  # not taken for the current one until then

    alerts.saw_spend(db, only_alert(db), 600.0, MONTH, now=T0 + HOUR)

    alert = only_alert(db)
    assert (alert.period_start, alert.period_end) == (MONTH.start, MONTH.end)
    assert alert.is_current(T0 + HOUR) and not alert.is_current(MONTH.end)
    assert alert.spend_cu == 600.0


def test_saw_spend_leaves_a_rolling_episode_without_bounds(db: Database) -> None:
    budget = make_budget(db, PeriodKind.ROLLING_24H)
    write(db, budget, opening("rolling:24h#1", 50), period=ROLLING, spend=600.0)

    alerts.saw_spend(db, only_alert(db), 650.0, ROLLING, now=T0 + HOUR)

    alert = only_alert(db)
    assert (alert.period_start, alert.period_end, alert.spend_cu) == (None, None, 650.0)
    assert alert.is_current(T0 + timedelta(days=365))


# --- events --------------------------------------------------------------------------


def test_events_stay_unpublished_until_marked_and_filter_by_workspace(db: Database) -> None:
    mine = make_budget(db)
    theirs = make_budget(db, workspace=OTHER_WS)
    my_alert = write(db, mine, opening(MONTH.key, 50))
    their_alert = write(db, theirs, opening(MONTH.key, 50))
    alerts.add_event(
        db,
        my_alert,
        EventKind.SNOOZED,
        now=T0 + HOUR,
        expires_at=T0 + 2 * HOUR,
        actor="U1",
        detail={"until": T0 + timedelta(days=1)},
    )

    everything = alerts.unpublished_events(db)
    assert [e.alert_id for e in everything] == [my_alert, their_alert, my_alert]  # by id
    assert [e.alert_id for e in alerts.unpublished_events(db, workspace_id=WS)] == [
        my_alert,
        my_alert,
    ]
    snoozed = everything[2]
    assert (snoozed.kind, snoozed.actor, snoozed.at, snoozed.expires_at) == (
        EventKind.SNOOZED,
        "U1",
        T0 + HOUR,
        T0 + 2 * HOUR,
    )
    assert snoozed.detail == {"until": str(T0 + timedelta(days=1))}

    alerts.mark_published(db, everything[0].id)

    assert [e.id for e in alerts.unpublished_events(db, workspace_id=WS)] == [snoozed.id]
    assert [e.id for e in alerts.events_of(db, my_alert)] == [everything[0].id, snoozed.id]


def test_new_message_starts_the_alerts_message_in_the_new_channel(db: Database) -> None:
    budget = make_budget(db)
    alert_id = write(db, budget, opening(MONTH.key, 50))

    root_key = alerts.new_message(db, alert_id, "C2", f"alert:{alert_id}:in:C2")

    alert = only_alert(db)
    assert root_key == alert.root_key == f"alert:{alert_id}:in:C2"
    assert alert.channel_id == "C2"


# --- history -------------------------------------------------------------------------


def test_recent_alerts_are_newest_first_within_the_workspace(db: Database) -> None:
    budget = make_budget(db)
    theirs = make_budget(db, workspace=OTHER_WS)
    second = make_budget(db)
    write(db, budget, opening(MONTH.key, 50), now=T0)
    state = AlertState(MONTH.key, frozenset({50, 80}))
    write(db, budget, AlertChange(state, (Event(EventKind.LEVEL, 80),), False), now=T0 + HOUR)
    write(db, theirs, opening(MONTH.key, 50), now=T0 + 2 * HOUR)
    write(db, second, opening(MONTH.key, 100), now=T0 + timedelta(minutes=30))

    def levels(rows: list[alerts.AlertRow]) -> list[tuple[int, int]]:
        return [(row.budget_id, row.level) for row in rows]

    newest_first = [(budget.id, 80), (second.id, 100), (budget.id, 50)]
    assert levels(alerts.recent_alerts(db, WS)) == newest_first
    assert levels(alerts.recent_alerts(db, WS, budget_id=budget.id)) == [
        (budget.id, 80),
        (budget.id, 50),
    ]
    assert levels(alerts.recent_alerts(db, WS, limit=1)) == [(budget.id, 80)]
    assert alerts.recent_alerts(db, WS, budget_id=theirs.id) == []


# --- re-arming on an edit ------------------------------------------------------------


def test_raising_the_limit_rearms_the_levels_above_the_spend_seen(db: Database) -> None:
    budget = make_budget(db)
    check(db, budget.id, 1050.0, now=T0)  # 105 % of 1000: 50, 80 and 100 passed
    alert = only_alert(db)
    assert alert.state.passed == {50, 80, 100}
    edited_at = T0 + HOUR

    update_budget(db, WS, budget.id, {"limit_cu": 2000.0}, actor="UEDITOR", now=edited_at)

    alert = only_alert(db)
    assert alert.state == AlertState(MONTH.key, frozenset({50}), False, False)  # 52.5 %
    assert (alert.limit_cu, alert.spend_cu) == (2000.0, 1050.0)
    event = alerts.events_of(db, alert.id)[-1]
    assert (event.kind, event.actor, event.at) == (EventKind.EDITED, "UEDITOR", edited_at)
    assert (event.spend_cu, event.limit_cu) == (1050.0, 2000.0)
    assert event.detail == {
        "limit_cu": 2000.0,
        "thresholds": [50, 80, 100],
        "from_limit_cu": 1000.0,
    }
    assert event.expires_at == edited_at + ACTION_TTL
    assert audit.history(db, WS)[0].action == "budget.edit"

    # The re-armed level alerts again on the same message, at the new limit.
    [change] = check(db, budget.id, 1700.0, now=T0 + 2 * HOUR)
    assert (change.opens, change.events) == (False, (Event(EventKind.LEVEL, 80),))
    row = history(db, budget.id)[(MONTH.key, AlertKind.THRESHOLD, 80)]
    assert (row.limit_cu, row.spend_cu, row.fired_at) == (2000.0, 1700.0, T0 + 2 * HOUR)
    assert db["alert_state"].count == 4  # 50, 80, 100 at the jump, then 80 again


def test_an_edit_rearms_the_forecast_only_when_the_limit_changes(db: Database) -> None:
    budget = make_budget(db, forecast=True)
    state = AlertState(MONTH.key, frozenset({50}), forecast=True)
    write(db, budget, AlertChange(state, (Event(EventKind.FORECAST),), True), spend=600.0)

    update_budget(db, WS, budget.id, {"thresholds": (50, 90)}, actor="U1", now=T0 + HOUR)
    assert only_alert(db).state == AlertState(MONTH.key, frozenset({50}), forecast=True)
    assert alerts.events_of(db, only_alert(db).id)[-1].detail == {
        "thresholds": [50, 90],
    }

    update_budget(db, WS, budget.id, {"limit_cu": 650.0}, actor="U1", now=T0 + 2 * HOUR)
    assert only_alert(db).state == AlertState(MONTH.key, frozenset({50, 90}), forecast=False)


def test_an_edit_without_an_open_alert_changes_no_alert(db: Database) -> None:
    budget = make_budget(db)

    update_budget(db, WS, budget.id, {"limit_cu": 2000.0}, actor="UEDITOR", now=T0)

    assert db["alerts"].count == 0
    assert db["alert_events"].count == 0


def test_an_edit_leaves_the_alert_of_an_ended_period_alone(db: Database) -> None:
    budget = make_budget(db)
    check(db, budget.id, 1050.0, now=T0)
    before = only_alert(db)
    december = MONTH.end + timedelta(days=1)

    update_budget(db, WS, budget.id, {"limit_cu": 2000.0}, actor="UEDITOR", now=december)

    assert only_alert(db) == before
    assert kinds(db, before.id) == [(EventKind.LEVEL, 100)]


def test_rearming_a_rolling_episode_below_every_level_closes_it(db: Database) -> None:
    budget = make_budget(db, PeriodKind.ROLLING_24H)
    check(db, budget.id, 600.0, now=T0)

    update_budget(db, WS, budget.id, {"limit_cu": 5000.0}, actor="U1", now=T0 + HOUR)

    first = only_alert(db)
    assert (first.state.passed, first.state.closed, first.closed_at) == (
        frozenset(),
        True,
        T0 + HOUR,
    )
    assert kinds(db, first.id)[-1] == (EventKind.EDITED, None)
    [change] = check(db, budget.id, 2600.0, now=T0 + 2 * HOUR)
    assert (change.opens, change.state.period_key) == (True, "rolling:24h#2")


def test_renaming_a_rolling_budget_keeps_its_episode(db: Database) -> None:
    budget = make_budget(db, PeriodKind.ROLLING_24H)
    check(db, budget.id, 550.0, now=T0)  # 50 % passed
    check(db, budget.id, 470.0, now=T0 + HOUR)  # 47 %: above 45 %, so 50 stays passed
    before = only_alert(db)
    assert before.state.passed == {50}

    update_budget(db, WS, budget.id, {"scope_name": "Marketing"}, actor="U1", now=T0 + 2 * HOUR)

    # Re-arming at the 470 seen would have armed 50 again and closed the episode: at 51 %
    # the next check would open `rolling:24h#2` and announce 50 % though spend never fell
    # back under 45 %.
    assert only_alert(db) == before
    assert kinds(db, before.id) == [(EventKind.LEVEL, 50)]  # the rename is not announced
    assert check(db, budget.id, 510.0, now=T0 + 3 * HOUR) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"channel_id": "C2"},
        {"forecast": False},
        {"thresholds": (100, 80, 50)},  # the same levels in another order
        {"thresholds": (50, 80, 80, 100)},  # … or repeated
        {"limit_cu": 1000.0},  # the limit it already had
    ],
    ids=["channel", "forecast-flag", "thresholds-reordered", "thresholds-repeated", "same-limit"],
)
def test_an_edit_that_changes_neither_limit_nor_levels_leaves_the_alert_alone(
    db: Database, changes: dict[str, object]
) -> None:
    budget = make_budget(db, forecast=True)
    state = AlertState(MONTH.key, frozenset({50, 80}), forecast=True)
    write(db, budget, AlertChange(state, (Event(EventKind.LEVEL, 80),), True), spend=600.0)
    before = only_alert(db)  # 80 counts as passed though 600 is 60 %: a re-arm would drop it

    update_budget(db, WS, budget.id, changes, actor="U1", now=T0 + HOUR)

    assert only_alert(db) == before
    assert kinds(db, before.id) == [(EventKind.LEVEL, 80)]
    assert audit.history(db, WS)[0].action == "budget.edit"  # the edit itself is recorded


@pytest.mark.parametrize(
    "changes",
    [{"period": PeriodKind.WEEKLY}, {"period": PeriodKind.ROLLING_24H}],
    ids=["weekly", "rolling"],
)
def test_another_period_closes_the_open_alert_and_the_next_crossing_opens_a_new_one(
    db: Database, changes: dict[str, object]
) -> None:
    budget = make_budget(db)
    check(db, budget.id, 850.0, now=T0)
    november = only_alert(db)
    edited_at = T0 + HOUR

    update_budget(db, WS, budget.id, changes, actor="U1", now=edited_at)

    closed = alerts.alert_by_id(db, november.id)
    assert closed is not None
    assert (closed.closed_at, closed.state.closed) == (edited_at, True)
    assert closed.state.passed == november.state.passed  # its message keeps what it said
    assert kinds(db, november.id) == [(EventKind.LEVEL, 80)]  # nothing more said on it
    assert alerts.open_alert_of(db, budget.id, edited_at) is None

    [change] = check(db, budget.id, 850.0, now=T0 + 2 * HOUR)

    assert change.opens and change.state.passed == {50, 80}
    assert change.state.period_key != november.period_key
    assert db["alerts"].count == 2


def test_another_scope_closes_the_open_alert_and_the_next_crossing_opens_a_new_one(
    db: Database,
) -> None:
    budget = make_budget(db)
    check(db, budget.id, 850.0, now=T0)
    november = only_alert(db)

    update_budget(
        db, WS, budget.id, {"scope": Scope(ScopeKind.PROJECT, "p1")}, actor="U1", now=T0 + HOUR
    )

    closed = alerts.alert_by_id(db, november.id)
    assert closed is not None and closed.closed_at == T0 + HOUR
    assert kinds(db, november.id) == [(EventKind.LEVEL, 80)]
    [change] = check(db, budget.id, 850.0, now=T0 + 2 * HOUR)  # the new scope's spend
    assert change.opens
    current = alerts.open_alert_of(db, budget.id, T0 + 2 * HOUR)
    assert current is not None and current.id != november.id
    assert current.state.passed == {50, 80}


# --- snoozes and acknowledgements ----------------------------------------------------


def test_snooze_and_unsnooze_add_events_to_the_open_alert_only(db: Database) -> None:
    budget = make_budget(db)
    october = previous_period(MONTH)
    old = write(db, budget, opening(october.key, 50), period=october, now=october.start)
    until = T0 + timedelta(hours=4)

    snoozes.snooze(db, WS, budget.id, until, actor="U1", now=T0)  # no open alert: no event
    assert snoozes.unsnooze(db, WS, budget.id, actor="U2", now=T0 + HOUR)
    assert db["alert_events"].count == 1  # October's own LEVEL event only

    current = write(db, budget, opening(MONTH.key, 50), now=T0 + 2 * HOUR)
    snoozes.snooze(db, WS, budget.id, until, actor="U1", now=T0 + 3 * HOUR)
    assert snoozes.unsnooze(db, WS, budget.id, actor="U2", now=T0 + 3 * HOUR + timedelta(minutes=5))

    assert kinds(db, old) == [(EventKind.LEVEL, 50)]
    snoozed, unsnoozed = alerts.events_of(db, current)[1:]
    assert (snoozed.kind, snoozed.actor, snoozed.detail) == (
        EventKind.SNOOZED,
        "U1",
        {"until": to_text(until)},
    )
    assert (snoozed.at, snoozed.expires_at) == (T0 + 3 * HOUR, T0 + 4 * HOUR)
    assert (unsnoozed.kind, unsnoozed.actor) == (EventKind.UNSNOOZED, "U2")
    actions = [e.action for e in audit.history(db, WS, target=f"budget:{budget.id}")]
    assert actions[:4] == ["budget.unsnooze", "budget.snooze", "budget.unsnooze", "budget.snooze"]


def test_an_action_reply_expires_with_the_period(db: Database) -> None:
    budget = make_budget(db)
    alert_id = write(db, budget, opening(MONTH.key, 50))
    late = MONTH.end - timedelta(minutes=10)

    snoozes.snooze(db, WS, budget.id, late + HOUR, actor="U1", now=late)

    assert alerts.events_of(db, alert_id)[-1].expires_at == MONTH.end  # not late + 1 h


def test_unsnoozing_an_ended_snooze_changes_nothing(db: Database) -> None:
    budget = make_budget(db)
    alert_id = write(db, budget, opening(MONTH.key, 50))
    snoozes.snooze(db, WS, budget.id, T0 + HOUR, actor="U1", now=T0)
    events, audits = db["alert_events"].count, db["audit_log"].count

    assert snoozes.unsnooze(db, WS, budget.id, actor="U2", now=T0 + HOUR) is False

    assert (db["alert_events"].count, db["audit_log"].count) == (events, audits)
    assert snoozes.snoozed_until(db, budget.id) == T0 + HOUR
    assert kinds(db, alert_id)[-1] == (EventKind.SNOOZED, None)


def test_acknowledging_twice_changes_nothing_the_second_time(db: Database) -> None:
    budget = make_budget(db)
    alert_id = write(db, budget, opening(MONTH.key, 80))
    audits = db["audit_log"].count

    assert alerts.acknowledge(db, WS, alert_id, actor="U1", now=T0) is True
    assert alerts.acknowledge(db, WS, alert_id, actor="U2", now=T0 + HOUR) is False

    alert = only_alert(db)
    assert (alert.acknowledged_by, alert.acknowledged_at) == ("U1", T0)
    [acknowledged] = [e for e in alerts.events_of(db, alert_id) if e.kind is EventKind.ACKNOWLEDGED]
    assert (acknowledged.actor, acknowledged.at, acknowledged.expires_at) == (
        "U1",
        T0,
        T0 + ACTION_TTL,
    )
    assert db["audit_log"].count == audits + 1
    latest = audit.history(db, WS)[0]
    assert (latest.action, latest.target, latest.actor, latest.after) == (
        "alert.acknowledge",
        f"alert:{alert_id}",
        "U1",
        {"acknowledged_by": "U1"},
    )


# --- the m002 migration --------------------------------------------------------------


@pytest.fixture
def old_db(tmp_path: Path) -> Iterator[Database]:
    """A database at m001, the schema before alerts had rows of their own."""
    database = open_db(tmp_path / "old.db")
    migrations.apply(database, stop_before=M002)
    assert migrations.pending(database)[0].name == M002
    yield database
    database.conn.close()


def old_budget(db: Database, budget_id: int, period: PeriodKind, channel: str = "C1") -> None:
    db.execute(
        "INSERT OR IGNORE INTO workspaces (team_id, created_at) VALUES (?, ?)", [WS, to_text(T0)]
    )
    db.execute(
        "INSERT INTO budgets (id, workspace_id, scope_kind, period, limit_cu, thresholds,"
        " forecast, channel_id, created_by, created_at, updated_at)"
        " VALUES (?, ?, 'team', ?, 1000, '[50, 80, 100]', 1, ?, 'UADMIN', ?, ?)",
        [budget_id, WS, period.value, channel, to_text(T0), to_text(T0)],
    )


def old_fired(
    db: Database,
    budget_id: int,
    key: str,
    level: int,
    *,
    spend: float,
    at: datetime,
    kind: str = "threshold",
    resolved_at: datetime | None = None,
) -> int:
    cursor = db.execute(
        "INSERT INTO alert_state (budget_id, period_key, kind, level, spend_cu, limit_cu,"
        " fired_at, resolved_at) VALUES (?, ?, ?, ?, ?, 1000, ?, ?)",
        [
            budget_id,
            key,
            kind,
            level,
            spend,
            to_text(at),
            to_text(resolved_at) if resolved_at else None,
        ],
    )
    return int(cursor.lastrowid or 0)


def old_post(
    db: Database, key: str, budget_id: int, *, thread_key: str | None = None, action: str = "post"
) -> None:
    db.execute(
        "INSERT INTO outbox (dedup_key, workspace_id, budget_id, channel_id, action, thread_key,"
        " payload, status, next_attempt_at, created_at, ts, sent_at)"
        " VALUES (?, ?, ?, 'C1', ?, ?, '{}', 'sent', ?, ?, '1.1', ?)",
        [key, WS, budget_id, action, thread_key, to_text(T0), to_text(T0), to_text(T0)],
    )


def old_key(budget_id: int, period_key: str, level: int, kind: str = "threshold") -> str:
    return f"alert:{budget_id}:{period_key}:{kind}:{level}"


def test_m002_turns_the_fired_levels_of_each_budget_and_period_into_one_alert(
    old_db: Database,
) -> None:
    db = old_db
    old_budget(db, 1, PeriodKind.MONTHLY)
    old_fired(db, 1, MONTH.key, 50, spend=600.0, at=T0)
    old_fired(db, 1, MONTH.key, 80, spend=850.0, at=T0 + HOUR)
    old_fired(db, 1, MONTH.key, FORECAST_LEVEL, spend=850.0, at=T0 + 2 * HOUR, kind="forecast")
    first_post = old_key(1, MONTH.key, 50)
    old_post(db, first_post, 1)
    old_post(db, old_key(1, MONTH.key, 80), 1, thread_key=first_post)
    old_post(db, old_key(1, MONTH.key, 80) + ":update", 1, thread_key=first_post, action="update")
    old_post(db, old_key(1, MONTH.key, FORECAST_LEVEL, "forecast"), 1)
    # One check passed 50 and 80 at once: only the top level was posted.
    old_budget(db, 2, PeriodKind.MONTHLY)
    old_fired(db, 2, MONTH.key, 50, spend=900.0, at=T0)
    old_fired(db, 2, MONTH.key, 80, spend=900.0, at=T0)
    old_post(db, old_key(2, MONTH.key, 80), 2)
    # The first post is gone; a reply in its thread is no message of the alert's own.
    old_budget(db, 4, PeriodKind.MONTHLY)
    old_fired(db, 4, MONTH.key, 50, spend=600.0, at=T0)
    old_fired(db, 4, MONTH.key, 80, spend=850.0, at=T0 + HOUR)
    old_post(db, old_key(4, MONTH.key, 80), 4, thread_key=old_key(4, MONTH.key, 50))
    # A rolling window: 50 fired, fell back under and fired again (#2); 80 fired once
    # (#1). The levels still passed go on as one alert; its post was pruned.
    old_budget(db, 3, PeriodKind.ROLLING_24H)
    old_fired(db, 3, "rolling:24h#1", 50, spend=600.0, at=T0 - 5 * HOUR, resolved_at=T0 - 4 * HOUR)
    old_fired(db, 3, "rolling:24h#2", 50, spend=550.0, at=T0 - HOUR)
    last_old_id = old_fired(db, 3, "rolling:24h#1", 80, spend=850.0, at=T0)
    history_before = list(db.query("SELECT * FROM alert_state ORDER BY id"))

    assert migrate(db)[0] == M002

    assert db["alerts"].count == 4  # budgets 1, 2 and 4's November, budget 3's window
    assert db.execute("SELECT MIN(id) FROM alerts").fetchone()[0] > last_old_id
    assert list(db.query("SELECT * FROM alert_state ORDER BY id")) == history_before
    assert db["alert_events"].count == 0  # the upgrade announces nothing

    first, episodes = alerts.current_alert(db, 1, MONTH)
    assert first is not None and episodes == 0
    assert first.state == AlertState(MONTH.key, frozenset({50, 80}), forecast=True, closed=False)
    assert (first.spend_cu, first.limit_cu, first.channel_id) == (850.0, 1000.0, "C1")
    assert first.root_key == first_post  # its message goes on being edited
    assert (first.opened_at, first.closed_at, first.acknowledged_by) == (T0, None, None)

    jumped, _ = alerts.current_alert(db, 2, MONTH)
    assert jumped is not None
    assert (jumped.state.passed, jumped.root_key) == ({50, 80}, old_key(2, MONTH.key, 80))

    orphan, _ = alerts.current_alert(db, 4, MONTH)
    assert orphan is not None
    assert orphan.root_key == f"alert:migrated:4:{MONTH.key}"  # its next event posts anew

    rolling, episodes = alerts.current_alert(db, 3, ROLLING)
    assert rolling is not None and episodes == 1
    assert rolling.state == AlertState("rolling:24h#migrated", frozenset({50, 80}))
    assert (rolling.period_start, rolling.period_end) == (None, None)
    assert rolling.is_current(T0)
    assert rolling.root_key == "alert:migrated:3:rolling:24h#migrated"
    assert (rolling.spend_cu, rolling.opened_at) == (850.0, T0 - HOUR)  # of the open levels

    # Mid-period, the next check announces nothing that was announced before the upgrade.
    assert check(db, 1, 850.0, now=T0 + 3 * HOUR) == []
    assert check(db, 3, 850.0, now=T0 + 3 * HOUR) == []
    assert db["alert_events"].count == 0
    checked = alerts.alert_by_id(db, first.id)
    assert checked is not None  # the check gave it its period's bounds
    assert (checked.period_start, checked.period_end) == (MONTH.start, MONTH.end)


def test_m002_makes_the_history_a_plain_log_of_firings(old_db: Database) -> None:
    db = old_db
    old_budget(db, 1, PeriodKind.MONTHLY)
    fifty = old_fired(db, 1, MONTH.key, 50, spend=850.0, at=T0)  # one check passed both
    eighty = old_fired(db, 1, MONTH.key, 80, spend=850.0, at=T0)
    old_post(db, old_key(1, MONTH.key, 80), 1)
    migrate(db)
    assert check(db, 1, 850.0, now=T0 + timedelta(minutes=30)) == []  # the first after it
    raised = update_budget(db, WS, 1, {"limit_cu": 2000.0}, actor="U1", now=T0 + HOUR)
    assert only_alert(db).state.passed == frozenset()  # 850 is 42.5 % of 2000

    check(db, raised.id, 1700.0, now=T0 + 2 * HOUR)  # 85 %: 50 and 80 fire again

    lines = [(r.id, r.level, r.limit_cu) for r in alerts.recent_alerts(db, WS)]
    # The old lines, under their old ids, and the same levels again: no UNIQUE key any more.
    assert lines[-2:] == [(eighty, 80, 1000.0), (fifty, 50, 1000.0)]
    assert [(level, limit) for _, level, limit in lines[:-2]] == [(80, 2000.0), (50, 2000.0)]
    assert lines[0][0] > eighty
    indexes = {index.name: index.columns for index in db["alert_state"].indexes}
    assert indexes == {"alert_state_budget": ["budget_id", "period_key"]}


def test_m002_adds_the_outbox_and_health_columns(old_db: Database) -> None:
    db = old_db
    old_budget(db, 1, PeriodKind.MONTHLY)
    old_post(db, "digest:T1:2026-11-25", 1)
    db.execute(
        "INSERT INTO outbox (dedup_key, workspace_id, channel_id, action, payload,"
        " next_attempt_at, created_at) VALUES ('queued', ?, 'C1', 'post', '{}', ?, ?)",
        [WS, to_text(T0 + HOUR), to_text(T0 + HOUR)],
    )
    db.execute("INSERT INTO scenario_health (workspace_id) VALUES (?)", [WS])

    migrate(db)

    rows = {
        row.pop("dedup_key"): row
        for row in db.query("SELECT dedup_key, expires_at, revision, done_at FROM outbox")
    }
    # Old rows stop mattering a day after they were queued; a sent row was settled when sent.
    assert rows == {
        "digest:T1:2026-11-25": {
            "expires_at": to_text(T0 + timedelta(days=1)),
            "revision": 0,
            "done_at": to_text(T0),
        },
        "queued": {
            "expires_at": to_text(T0 + HOUR + timedelta(days=1)),
            "revision": 0,
            "done_at": None,
        },
    }
    assert next(db.query("SELECT consecutive_successes FROM scenario_health")) == {
        "consecutive_successes": 0
    }
    budget = find_budget(db, 1)
    assert budget is not None
    new_id = write(db, budget, opening(next_period(MONTH).key, 50), period=next_period(MONTH))
    assert alerts.alert_by_id(db, new_id) is not None


def test_m002_on_a_database_without_alerts_starts_alert_ids_at_one(old_db: Database) -> None:
    old_budget(old_db, 1, PeriodKind.MONTHLY)
    migrate(old_db)
    budget = find_budget(old_db, 1)
    assert budget is not None

    assert write(old_db, budget, opening(MONTH.key, 50)) == 1


def test_m002_never_gives_an_alert_the_id_of_a_removed_budgets_old_alert(
    old_db: Database,
) -> None:
    db = old_db
    old_budget(db, 1, PeriodKind.MONTHLY)
    kept = old_fired(db, 1, MONTH.key, 50, spend=600.0, at=T0)
    old_budget(db, 2, PeriodKind.MONTHLY)
    removed = old_fired(db, 2, MONTH.key, 50, spend=600.0, at=T0)  # its message has a button
    db.execute("DELETE FROM budgets WHERE id = 2")  # alert_state rows cascade
    # The highest id left is below the one given last: MAX(id) alone would hand it out again.
    assert db.execute("SELECT MAX(id) FROM alert_state").fetchone()[0] == kept < removed

    migrate(db)

    # The Acknowledge button on budget 2's old message must not name budget 1's alert.
    assert alerts.get_alert(db, WS, removed) is None
    assert alerts.alert_by_id(db, removed) is None
    [migrated] = [row["id"] for row in db.query("SELECT id FROM alerts")]
    assert migrated > removed
    budget = find_budget(db, 1)
    assert budget is not None
    later = write(db, budget, opening(next_period(MONTH).key, 50), period=next_period(MONTH))
    assert later > migrated


def test_m002_a_migrated_alert_of_a_calendar_period_ends_with_its_period(
    old_db: Database,
) -> None:
    db = old_db
    old_budget(db, 1, PeriodKind.MONTHLY)
    old_fired(db, 1, MONTH.key, 50, spend=600.0, at=T0)
    migrate(db)
    december = MONTH.end + timedelta(days=2)

    # The upgrade reads its period from its key: it is November's alert, and in December a
    # snooze or an edit does not reply on November's message.
    alert = only_alert(db)
    assert (alert.period_start, alert.period_end) == (MONTH.start, MONTH.end)
    assert alerts.open_alert_of(db, 1, T0 + HOUR) == alert
    assert alerts.open_alert_of(db, 1, december) is None
    snoozes.snooze(db, WS, 1, december + HOUR, actor="U1", now=december)
    assert db["alert_events"].count == 0


def test_m002_a_rolling_window_whose_levels_fired_different_numbers_of_times(
    old_db: Database,
) -> None:
    db = old_db
    old_budget(db, 1, PeriodKind.ROLLING_24H)
    # Old evaluate: 50 fired once (#1); 80 fired, fell back under, fired again (#2).
    old_fired(db, 1, "rolling:24h#1", 50, spend=550.0, at=T0 - 3 * HOUR)
    old_fired(db, 1, "rolling:24h#1", 80, spend=850.0, at=T0 - 2 * HOUR, resolved_at=T0 - HOUR)
    old_fired(db, 1, "rolling:24h#2", 80, spend=850.0, at=T0)
    migrate(db)

    alert = only_alert(db)  # one alert for the window, not one per old `#n`
    assert alert.state == AlertState("rolling:24h#migrated", frozenset({50, 80}))
    assert alert.opened_at == T0 - 3 * HOUR
    # At 85 %, 50 and 80 were both announced and are still passed: nothing to say.
    assert check(db, 1, 850.0, now=T0 + HOUR) == []


def test_m002_a_rolling_window_fired_ten_times_goes_on_as_one_alert(old_db: Database) -> None:
    """The old `#n` ordered as text (#1, #10, #2 …); no old number is reused now."""
    db = old_db
    old_budget(db, 1, PeriodKind.ROLLING_24H)
    for n in range(1, 10):
        at = T0 - timedelta(days=11 - n)
        old_fired(db, 1, f"rolling:24h#{n}", 50, spend=600.0, at=at, resolved_at=at + HOUR)
    old_fired(db, 1, "rolling:24h#10", 50, spend=600.0, at=T0)
    migrate(db)

    current, episodes = alerts.current_alert(db, 1, ROLLING)
    assert current is not None
    assert (current.period_key, current.state.passed, episodes) == (
        "rolling:24h#migrated",
        {50},
        1,
    )
    assert current.opened_at == T0  # the firing still open, not the nine resolved ones
    assert check(db, 1, 600.0, now=T0 + HOUR) == []

    # Back under, the episode ends; the next crossing is the window's second episode.
    [back] = check(db, 1, 400.0, now=T0 + 2 * HOUR)
    assert (back.state.period_key, back.state.closed) == ("rolling:24h#migrated", True)
    [crossing] = check(db, 1, 600.0, now=T0 + 3 * HOUR)
    assert (crossing.opens, crossing.state.period_key) == (True, "rolling:24h#2")
    assert alerts.current_alert(db, 1, ROLLING)[1] == 2


def test_m002_a_rolling_window_with_every_level_back_under_has_no_alert(
    old_db: Database,
) -> None:
    db = old_db
    old_budget(db, 1, PeriodKind.ROLLING_24H)
    old_fired(db, 1, "rolling:24h#1", 50, spend=600.0, at=T0 - 2 * HOUR, resolved_at=T0 - HOUR)
    old_fired(db, 1, "rolling:24h#1", 80, spend=850.0, at=T0 - 2 * HOUR, resolved_at=T0 - HOUR)
    migrate(db)

    assert db["alerts"].count == 0
    assert alerts.open_alert_of(db, 1, T0) is None
    [change] = check(db, 1, 600.0, now=T0)
    assert (change.opens, change.state.period_key) == (True, "rolling:24h#1")


def test_m002_an_edit_before_the_first_check_rearms_the_migrated_alert(
    old_db: Database,
) -> None:
    db = old_db
    old_budget(db, 1, PeriodKind.MONTHLY)
    old_fired(db, 1, MONTH.key, 50, spend=850.0, at=T0)
    old_fired(db, 1, MONTH.key, 80, spend=850.0, at=T0)
    migrate(db)

    update_budget(db, WS, 1, {"limit_cu": 2000.0}, actor="U1", now=T0 + HOUR)

    assert only_alert(db).state.passed == frozenset()  # 850 is 42.5 % of 2000
    [change] = check(db, 1, 1700.0, now=T0 + 2 * HOUR)  # 85 % of the new limit
    assert change.events == (Event(EventKind.LEVEL, 80),)


def test_m002_back_under_resolves_the_old_lines_of_a_migrated_rolling_window(
    old_db: Database,
) -> None:
    db = old_db
    old_budget(db, 1, PeriodKind.ROLLING_24H)
    old_fired(db, 1, "rolling:24h#1", 50, spend=550.0, at=T0 - 2 * HOUR)
    old_fired(db, 1, "rolling:24h#2", 80, spend=850.0, at=T0 - HOUR)
    migrate(db)

    [change] = check(db, 1, 400.0, now=T0)  # under 45 %: 50 and 80 both re-arm

    assert change.state.closed
    assert [r.resolved_at for r in alerts.recent_alerts(db, WS)] == [T0, T0]


def test_m002_keeps_who_acknowledged_the_alert(old_db: Database) -> None:
    db = old_db
    old_budget(db, 1, PeriodKind.MONTHLY)
    fired = old_fired(db, 1, MONTH.key, 50, spend=600.0, at=T0)
    db.execute(
        "INSERT INTO acknowledgements (alert_id, user_id, created_at) VALUES (?, 'U1', ?)",
        [fired, to_text(T0 + HOUR)],
    )
    october = previous_period(MONTH)
    old_fired(db, 1, october.key, 50, spend=600.0, at=october.start)

    migrate(db)

    alert, _ = alerts.current_alert(db, 1, MONTH)
    assert alert is not None
    assert (alert.acknowledged_by, alert.acknowledged_at) == ("U1", T0 + HOUR)
    assert alerts.acknowledge(db, WS, alert.id, actor="U2", now=T0 + 2 * HOUR) is False
    unacknowledged, _ = alerts.current_alert(db, 1, october)
    assert unacknowledged is not None and unacknowledged.acknowledged_by is None
    assert "acknowledgements" not in db.table_names()  # the alert holds it now


def test_the_migrated_passed_levels_are_a_json_list(old_db: Database) -> None:
    old_budget(old_db, 1, PeriodKind.MONTHLY)
    old_fired(old_db, 1, MONTH.key, FORECAST_LEVEL, spend=300.0, at=T0, kind="forecast")
    migrate(old_db)

    row = next(old_db.query("SELECT passed, forecast, closed_at FROM alerts"))
    assert (json.loads(row["passed"]), row["forecast"], row["closed_at"]) == ([], 1, None)
