"""Hand-worked cases for the reference model: each expected value was derived on paper from the
contract, not by running the model."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.model.reference import (
    BudgetSpec,
    Job,
    Message,
    Reference,
    TopState,
    calendar_period,
    local_day_start,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, far from any DST change
LEVELS = frozenset({50, 80, 100})


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def spec(
    budget_id: int = 1,
    limit: float = 1000,
    thresholds: frozenset[int] = LEVELS,
    period: str = "daily",
    scope: str = "team",
    tz: str = "UTC",
) -> BudgetSpec:
    return BudgetSpec(budget_id, limit, thresholds, period, scope, tz)


def job(at: datetime, cu: float, *scopes: str) -> Job:
    return Job(at, cu, frozenset({"team", *scopes}))


def top(
    level: int | None,
    limit: float = 1000,
    ack: str | None = None,
    thresholds: tuple[int, ...] = (50, 80, 100),
    snoozed_until: datetime | None = None,
) -> TopState:
    return TopState(level, limit, thresholds, ack, snoozed_until)


def test_jump_posts_highest_new_level_then_replies() -> None:
    ref = Reference()
    ref.add(h(0), spec())
    ref.add_job(job(h(1), 100))
    ref.check(h(2))  # 10 %: nothing
    assert ref.messages() == {}
    ref.add_job(job(h(2.5), 750))
    ref.check(h(3))  # 85 %: 50 and 80 pass together, announced as 80
    ref.add_job(job(h(3.5), 200))
    ref.check(h(4))  # 105 %
    assert ref.messages() == {
        (1, "2026-03-02"): Message(top(100), (("level", 100),), ("level", 80)),
    }


def test_daily_rollover_across_paris_dst_night() -> None:
    # 2026-10-25 in Paris runs from 2026-10-24T22:00Z (CEST) to 2026-10-25T23:00Z (CET): 25 h.
    ref = Reference()
    paris = spec(limit=100, thresholds=frozenset({50, 100}), tz="Europe/Paris")
    ref.add(utc(2026, 10, 24, 12), paris)
    ref.add_job(job(utc(2026, 10, 24, 21, 30), 60))  # 23:30 local on the 24th
    ref.check(utc(2026, 10, 24, 21, 45))
    ref.add_job(job(utc(2026, 10, 24, 22, 30), 60))  # 00:30 local on the 25th
    ref.check(utc(2026, 10, 24, 23, 0))  # new day: only the 00:30 job counts
    ref.add_job(job(utc(2026, 10, 25, 22, 30), 40))  # 23:30 CET, still the 25th
    ref.check(utc(2026, 10, 25, 22, 45))  # 24 h 45 min into the day, same period
    ref.check(utc(2026, 10, 25, 23, 0))  # the 26th: spend 0
    ref.add_job(job(utc(2026, 10, 25, 23, 10), 50))
    ref.check(utc(2026, 10, 25, 23, 20))
    assert ref.messages() == {
        (1, "2026-10-24"): Message(top(50, 100, thresholds=(50, 100)), (), ("level", 50)),
        (1, "2026-10-25"): Message(
            top(100, 100, thresholds=(50, 100)), (("level", 100),), ("level", 50)
        ),
        (1, "2026-10-26"): Message(top(50, 100, thresholds=(50, 100)), (), ("level", 50)),
    }


@pytest.mark.parametrize(
    ("tz", "day", "start"),
    [
        ("Europe/Paris", date(2026, 10, 25), utc(2026, 10, 24, 22)),
        ("Europe/Paris", date(2026, 10, 26), utc(2026, 10, 25, 23)),
        # Brazil's 2018 DST began at midnight: 00:00 -03 became 01:00 -02, at 03:00Z.
        ("America/Sao_Paulo", date(2018, 11, 4), utc(2018, 11, 4, 3)),
        # Cuba turns 01:00 CDT back to 00:00 CST, so midnight happens twice; the first counts.
        ("America/Havana", date(2026, 11, 1), utc(2026, 11, 1, 4)),
        # Samoa skipped 2011-12-30 entirely: it "starts" when the 31st does, at 10:00Z on the 30th.
        ("Pacific/Apia", date(2011, 12, 30), utc(2011, 12, 30, 10)),
        ("Pacific/Apia", date(2011, 12, 31), utc(2011, 12, 30, 10)),
    ],
)
def test_local_day_start(tz: str, day: date, start: datetime) -> None:
    assert local_day_start(tz, day) == start


def test_rolling_back_under_closes_episode_and_next_crossing_opens_a_new_one() -> None:
    ref = Reference()
    ref.add(h(0), spec(period="rolling_24h"))
    ref.add_job(job(h(0), 250))
    ref.add_job(job(h(1), 200))
    ref.add_job(job(h(2), 400))
    ref.check(h(3))  # 850: episode-1 opens at 80
    ref.check(h(24.5))  # window from h(0.5): 600 < 720 re-arms 80, but 600 >= 450 keeps 50
    ref.check(h(25.5))  # window from h(1.5): 400 < 450 re-arms 50, P empty, episode closed
    ref.add_job(job(h(25.75), 300))
    ref.check(h(25.8))  # window from h(1.8): 400 + 300 = 700
    assert ref.messages() == {
        (1, "episode-1"): Message(
            top(None), (("back_under", 80), ("back_under", 50)), ("level", 80)
        ),
        (1, "episode-2"): Message(top(50), (), ("level", 50)),
    }


def test_hysteresis_keeps_level_passed_above_ninety_percent_of_it() -> None:
    ref = Reference()
    ref.add(h(0), spec(period="rolling_24h"))
    ref.add_job(job(h(1), 810))
    ref.check(h(2))  # 810
    ref.add_job(job(h(2), -20))  # negative CU is just a test device to lower spend in-window
    ref.check(h(3))  # 790 >= 720: 80 stays passed
    ref.add_job(job(h(3), 20))
    ref.check(h(4))  # 810: 80 already passed, nothing
    ref.add_job(job(h(4), -90))
    ref.check(h(5))  # 720 is exactly 90 % of 80 %: not under it, still nothing
    ref.add_job(job(h(5), -0.25))
    ref.check(h(6))  # 719.75 < 720: re-armed
    assert ref.messages() == {
        (1, "episode-1"): Message(top(50), (("back_under", 80),), ("level", 80)),
    }


def test_a_drop_rearming_several_levels_reports_the_lowest_and_keeps_the_episode() -> None:
    ref = Reference()
    ref.add(h(0), spec(period="rolling_24h"))
    ref.add_job(job(h(1), 1000))
    ref.check(h(2))  # 100 %: P = {50, 80, 100}
    ref.add_job(job(h(2), -400))
    ref.check(h(3))  # 60 %: under 72 and 90, not under 45
    ref.add_job(job(h(3), 400))
    ref.check(h(4))  # 100 % again, same episode
    assert ref.messages() == {
        (1, "episode-1"): Message(top(100), (("back_under", 80), ("level", 100)), ("level", 100)),
    }


def test_rolling_window_includes_its_start_and_excludes_the_check_time() -> None:
    ref = Reference()
    ref.add(h(0), spec(period="rolling_24h", thresholds=frozenset({50})))
    ref.add_job(job(h(1), 500))  # exactly t - 24 h at the check below: counted
    ref.add_job(job(h(25), 500))  # exactly t: not counted
    ref.check(h(25))
    expected = Message(top(50, thresholds=(50,)), (), ("level", 50))
    assert ref.messages() == {(1, "episode-1"): expected}


def test_raising_the_limit_rearms_levels_above_the_last_seen_spend() -> None:
    ref = Reference()
    ref.add(h(0), spec())
    ref.add_job(job(h(1), 1000))
    ref.check(h(2))  # 100 %
    ref.edit(h(3), 1, limit_cu=2000)  # s0 = 1000 is 50 % of 2000: P = {50}
    ref.add_job(job(h(3), 200))
    ref.check(h(4))  # 1200 = 60 %: 50 already passed
    ref.add_job(job(h(4), 800))
    ref.check(h(5))  # 2000 = 100 %: 80 and 100 newly passed
    assert ref.messages() == {
        (1, "2026-03-02"): Message(
            top(100, limit=2000.0),
            (("edited", 2000.0, (50, 80, 100)), ("level", 100)),
            ("level", 100),
        ),
    }


def test_edit_without_a_current_message_only_changes_the_budget() -> None:
    ref = Reference()
    ref.add(h(0), spec())
    ref.add_job(job(h(1), 400))
    ref.check(h(2))  # 40 %: no message
    ref.edit(h(3), 1, limit_cu=500, thresholds=frozenset({90}))
    assert ref.messages() == {}
    ref.check(h(4))  # 400 / 500 = 80 % < 90 %
    assert ref.messages() == {}
    ref.add_job(job(h(4), 50))
    ref.check(h(5))  # 90 %
    assert ref.messages() == {
        (1, "2026-03-02"): Message(top(90, limit=500.0, thresholds=(90,)), (), ("level", 90)),
    }


def test_rolling_edit_that_empties_the_levels_closes_the_episode() -> None:
    ref = Reference()
    ref.add(h(0), spec(period="rolling_24h"))
    ref.add_job(job(h(1), 850))
    ref.check(h(2))
    ref.edit(h(3), 1, limit_cu=2000)  # 850 < 50 % of 2000: P empty, episode-1 closed
    ref.add_job(job(h(3), 150))
    ref.check(h(4))  # 1000 = 50 % of 2000: a new episode
    assert ref.messages() == {
        (1, "episode-1"): Message(
            top(None, limit=2000.0), (("edited", 2000.0, (50, 80, 100)),), ("level", 80)
        ),
        (1, "episode-2"): Message(top(50, limit=2000.0), (), ("level", 50)),
    }


def test_snooze_suppresses_and_the_crossing_is_announced_after_it_ends() -> None:
    ref = Reference()
    ref.add(h(0), spec())
    ref.snooze(h(0.5), 1, h(2))  # no message yet: no event anywhere
    ref.add_job(job(h(0.75), 900))
    ref.check(h(1))  # snoozed: frozen
    ref.check(h(1.99))
    assert ref.messages() == {}
    ref.check(h(2))  # snoozed_until > t is false now
    assert ref.messages() == {(1, "2026-03-02"): Message(top(80), (), ("level", 80))}


def test_snooze_and_unsnooze_on_an_existing_message() -> None:
    ref = Reference()
    ref.add(h(0), spec())
    ref.add_job(job(h(0.5), 600))
    ref.check(h(1))
    ref.unsnooze(h(1.5), 1)  # no snooze in effect: nothing
    ref.snooze(h(2), 1, h(5))
    assert ref.messages()[(1, "2026-03-02")] == Message(
        top(50, snoozed_until=h(5)), (("snoozed", h(5)),), ("level", 50)
    )
    ref.unsnooze(h(3), 1)
    ref.snooze(h(4), 1, h(6))
    ref.check(h(6.5))  # the snooze ended by time: no event, no longer shown
    assert ref.messages()[(1, "2026-03-02")] == Message(
        top(50), (("snoozed", h(5)), ("unsnoozed",), ("snoozed", h(6))), ("level", 50)
    )
    ref.unsnooze(h(7), 1)  # already ended: nothing
    assert len(ref.messages()[(1, "2026-03-02")].replies) == 3


def test_a_snoozed_check_still_updates_the_last_seen_spend() -> None:
    ref = Reference()
    ref.add(h(0), spec())
    ref.add_job(job(h(0.5), 600))
    ref.check(h(1))  # level 50
    ref.snooze(h(2), 1, h(10))
    ref.add_job(job(h(2.5), 300))
    ref.check(h(3))  # snoozed: 900 is seen but not announced
    ref.edit(h(4), 1, thresholds=LEVELS | {200})  # re-arm against 900: P = {50, 80}
    ref.unsnooze(h(5), 1)
    ref.check(h(6))  # 900: nothing new
    assert ref.messages() == {
        (1, "2026-03-02"): Message(
            top(80, thresholds=(50, 80, 100, 200)),
            (("snoozed", h(10)), ("edited", 1000.0, (50, 80, 100, 200)), ("unsnoozed",)),
            ("level", 50),
        ),
    }


def test_an_edit_that_changes_nothing_is_no_event() -> None:
    ref = Reference()
    ref.add(h(0), spec())
    ref.add_job(job(h(0.5), 600))
    ref.check(h(1))
    ref.edit(h(2), 1, limit_cu=1000, thresholds=LEVELS)
    assert ref.messages()[(1, "2026-03-02")].replies == ()


def test_a_failed_check_changes_nothing() -> None:
    ref = Reference()
    ref.add(h(0), spec())
    ref.add_job(job(h(0.5), 600))
    ref.check(h(1))  # level 50, s0 = 600
    ref.add_job(job(h(1.5), 300))
    ref.check(h(2), ok=False)  # would have been 80 %
    before = ref.messages()
    assert before == {(1, "2026-03-02"): Message(top(50), (), ("level", 50))}
    ref.edit(h(3), 1, thresholds=LEVELS | {200})  # s0 is still 600: P = {50}
    ref.check(h(4))  # 900: 80 is announced now
    assert ref.messages()[(1, "2026-03-02")].replies == (
        ("edited", 1000.0, (50, 80, 100, 200)),
        ("level", 80),
    )


def test_acknowledge_once_also_on_an_old_period() -> None:
    ref = Reference()
    ref.add(h(0), spec())
    ref.add_job(job(h(1), 600))
    ref.check(h(2))
    ref.add_job(job(h(24), 600))
    ref.check(h(25))  # next UTC day, new message
    ref.acknowledge(h(26), (1, "2026-03-02"), "alice")
    ref.acknowledge(h(27), (1, "2026-03-02"), "bob")
    ref.acknowledge(h(27), (1, "2099-01-01"), "bob")  # no such message
    assert ref.messages() == {
        (1, "2026-03-02"): Message(
            top(50, ack="alice"), (("acknowledged", "alice"),), ("level", 50)
        ),
        (1, "2026-03-03"): Message(top(50), (), ("level", 50)),
    }


def test_iso_week_starts_monday_midnight_local() -> None:
    # 2026-03-01 is a Sunday; New York is on EST (-05:00) until 2026-03-08.
    assert calendar_period("weekly", "America/New_York", utc(2026, 3, 2, 4, 59)) == (
        "2026-02-23",
        utc(2026, 2, 23, 5),
    )
    ref = Reference()
    ref.add(utc(2026, 2, 20), spec(period="weekly", tz="America/New_York"))
    ref.add_job(job(utc(2026, 2, 23, 4, 59), 500))  # Sunday 23:59 local: the week before
    ref.add_job(job(utc(2026, 2, 23, 5, 0), 500))  # Monday 00:00 local: this week
    ref.check(utc(2026, 3, 2, 3))  # Sunday 22:00 local: 500
    ref.add_job(job(utc(2026, 3, 2, 5), 800))
    ref.check(utc(2026, 3, 2, 6))  # Monday 01:00 local: new week, 800
    assert ref.messages() == {
        (1, "2026-02-23"): Message(top(50), (), ("level", 50)),
        (1, "2026-03-02"): Message(top(80), (), ("level", 80)),
    }


def test_month_starts_on_the_first_local_midnight_in_auckland() -> None:
    # Auckland is on NZDT (+13:00) on 2026-10-01, so the month starts at 11:00Z on 30 September.
    ref = Reference()
    ref.add(utc(2026, 9, 30), spec(period="monthly", tz="Pacific/Auckland"))
    ref.add_job(job(utc(2026, 9, 30, 10, 30), 900))  # 23:30 local on the 30th
    ref.add_job(job(utc(2026, 9, 30, 11, 0), 500))  # 00:00 local on the 1st
    ref.check(utc(2026, 9, 30, 12))
    assert ref.messages() == {(1, "2026-10-01"): Message(top(50), (), ("level", 50))}


def test_scope_and_remove() -> None:
    ref = Reference()
    ref.add(h(0), spec(1, scope="team"))
    ref.add(h(0), spec(2, limit=100, scope="project:a"))
    ref.add_job(job(h(0.5), 60, "project:a"))
    ref.add_job(job(h(0.5), 60, "project:b"))
    ref.check(h(1))  # team 120 (12 %), project:a 60 (60 %)
    ref.remove(h(2), 2)
    ref.add_job(job(h(2.5), 40, "project:a"))
    ref.check(h(3))  # project:a would be at 100 %, but the budget is gone
    ref.edit(h(3), 2, limit_cu=1)
    ref.acknowledge(h(4), (2, "2026-03-02"), "alice")
    assert ref.messages() == {(2, "2026-03-02"): Message(top(50, limit=100), (), ("level", 50))}


def test_a_long_mixed_history_gives_one_message_per_period_or_episode() -> None:
    rng = random.Random(7)
    ref = Reference()
    for i, period in enumerate(["daily", "weekly", "monthly", "rolling_24h"]):
        ref.add(h(0), spec(i + 1, period=period, tz="Europe/Paris"))
    for _ in range(200):
        ref.add_job(job(h(rng.uniform(0, 72)), rng.choice([5, 10, 25.25, 50])))
    for step in range(60):
        at = h(step * 1.2 + 0.1)
        if step % 7 == 3:
            ref.edit(at, 1 + step % 4, limit_cu=rng.choice([500, 1000, 2000]))
        elif step % 11 == 5:
            ref.snooze(at, 1 + step % 4, at + timedelta(hours=3))
        else:
            ref.check(at)
    messages = ref.messages()
    assert messages  # four budgets, three days of jobs: something crossed
    for (budget_id, label), message in messages.items():
        assert 1 <= budget_id <= 4
        assert message.first_event[0] == "level"
        assert label.startswith("episode-") == (budget_id == 4)
