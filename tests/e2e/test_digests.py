"""Digests through the real `/budget digest` command and the scheduler's digest job: a
channel gets at most one digest per local day, across `digest off` and on and a change of
cadence, and the answer says when the next one goes out."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.jobs.scheduler import Scheduler
from bot.store.digests import get_digest
from tests.e2e.conftest import TEAM_ID, Bot
from tests.e2e.test_budget import ask, everything

CHANNEL = "CDIGEST1"
THURSDAY = date(2026, 11, 26)


def paris(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo("Europe/Paris")).astimezone(
        UTC
    )


async def scheduler_runs(bot: Bot, now: datetime) -> None:
    """The digest job firing at `now` (as after a `/budget digest`, which asks for a run at
    once): it sends the digest if due, then delivers the outbox to the fake Slack."""
    bot.clock.set(now)
    digest = get_digest(bot.db, TEAM_ID, CHANNEL)
    if digest is not None:
        scheduler = Scheduler(
            bot.deps.runtime, check_interval=timedelta(hours=1), clock=lambda: now
        )
        await scheduler.send_digest(digest.id)


def digests_posted(bot: Bot) -> list[str]:
    return [m.text for m in bot.slack.top_level(CHANNEL)]


async def test_off_and_on_or_a_new_cadence_sends_no_second_digest_that_day(bot: Bot) -> None:
    bot.clock.set(paris(THURSDAY, 8, 50))
    await ask(bot, f"digest 09:00 <#{CHANNEL}|digest>")
    await scheduler_runs(bot, paris(THURSDAY, 9))
    [daily] = digests_posted(bot)
    assert daily.startswith("☀️ Scenario digest")

    # Off and on again within the hour the daily digest may still catch up in.
    bot.clock.set(paris(THURSDAY, 9, 5))
    await ask(bot, f"digest off <#{CHANNEL}|digest>")
    answer = everything(await ask(bot, f"digest 09:00 <#{CHANNEL}|digest>"))
    assert "Daily digest set" in answer
    assert f"Next digest: *Fri 27 Nov at 09:00* (<#{CHANNEL}> already had today's" in answer
    await scheduler_runs(bot, paris(THURSDAY, 9, 20))
    assert len(digests_posted(bot)) == 1

    # Weekly on Thursdays, set that Thursday morning: the weekly waits a week.
    bot.clock.set(paris(THURSDAY, 9, 25))
    answer = everything(await ask(bot, f"digest 09:00 <#{CHANNEL}|digest> weekly thu"))
    assert "Weekly digest moved: every Thursday at *09:00*" in answer
    assert "Next digest: *Thu 03 Dec at 09:00*" in answer
    await scheduler_runs(bot, paris(THURSDAY, 9, 30))
    await scheduler_runs(bot, paris(THURSDAY + timedelta(days=1), 9))  # not its day
    assert len(digests_posted(bot)) == 1

    await scheduler_runs(bot, paris(date(2026, 12, 3), 9, 5))
    assert len(digests_posted(bot)) == 2
    assert digests_posted(bot)[1].startswith("☀️ Scenario weekly digest for Thu 26 Nov")


async def test_a_digest_set_for_later_today_says_nothing_of_tomorrow(bot: Bot) -> None:
    bot.clock.set(paris(THURSDAY, 8, 50))
    answer = everything(await ask(bot, f"digest 09:00 <#{CHANNEL}|digest>"))
    assert "Next digest" not in answer
    await scheduler_runs(bot, paris(THURSDAY, 9))
    assert len(digests_posted(bot)) == 1
