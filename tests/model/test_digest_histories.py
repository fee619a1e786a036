"""Random digest histories against a reference model: a channel gets at most one digest per
local day, and every digest due by its schedule that this rule does not hold back is sent.

Each history is a workspace in a time zone, starting a few days before a DST change, a
month end or the year end, with two channels whose digests are set (any time, daily,
weekly on any day, monthly), moved, changed in cadence and turned off, between scheduler
ticks that come after waits of minutes to hours. A tick does what the scheduler does for
each digest (`is_due`, then `enqueue_digest` into a real SQLite store) and then what a
second process that saw the same digest due does (the same call again, which must queue
nothing). Scenario is left out: the digest's data is a fixed non-empty span, so every digest
sent posts a message.

The model below knows nothing of the bot's code: a digest is due on its day (every day, its
weekday, the 1st) from its local time for an hour (daily) or six (weekly, monthly), and a
channel that got a digest on a local day gets none more that day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import event, given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from bot.budgets.periods import digest_span
from bot.budgets.types import PeriodKind
from bot.jobs.digest import enqueue_digest, is_due
from bot.reports.digest import DigestData
from bot.store.db import from_text, migrate, open_db
from bot.store.digests import list_digests, set_digest, turn_off
from tests.jobs.test_digest import sample

WS = "T1"
CHANNELS = ("C_ONE", "C_TWO")
# (zone, first day): spring forward in Paris (29 March) and Auckland (27 September), fall
# back in New York (1 November), the year end; each history also meets a 1st.
STARTS = (
    ("Europe/Paris", date(2026, 3, 27)),
    ("Pacific/Auckland", date(2026, 9, 25)),
    ("America/New_York", date(2026, 10, 29)),
    ("Europe/Paris", date(2026, 12, 28)),
    ("UTC", date(2026, 12, 29)),
)
TIMES = (time(0, 0), time(0, 30), time(2, 30), time(9, 0), time(9, 30), time(23, 30))


# --- the reference model ----------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    at: time
    cadence: str  # "daily", "weekly" or "monthly"
    weekday: int | None  # 0 = Monday, for a weekly one


@dataclass
class Reference:
    tz: str
    schedules: dict[str, Schedule] = field(default_factory=dict)
    days_posted: dict[str, set[date]] = field(default_factory=dict)

    def goes_out_on(self, schedule: Schedule, day: date) -> bool:
        if schedule.cadence == "weekly":
            return day.weekday() == schedule.weekday
        if schedule.cadence == "monthly":
            return day.day == 1
        return True

    def due_window(self, schedule: Schedule, day: date) -> tuple[datetime, datetime]:
        start = datetime.combine(day, schedule.at, tzinfo=ZoneInfo(self.tz)).astimezone(UTC)
        late = timedelta(hours=1 if schedule.cadence == "daily" else 6)
        return start, start + late

    def tick(self, now: datetime) -> set[str]:
        """The channels that get a digest at `now`."""
        day = now.astimezone(ZoneInfo(self.tz)).date()
        sent: set[str] = set()
        for channel, schedule in self.schedules.items():
            if not self.goes_out_on(schedule, day):
                continue
            start, end = self.due_window(schedule, day)
            if not start <= now < end:
                continue
            if day in self.days_posted.setdefault(channel, set()):
                event("held back: the channel had a digest that day")
                continue
            event(f"sent: {schedule.cadence}")
            self.days_posted[channel].add(day)
            sent.add(channel)
        return sent


# --- the histories ----------------------------------------------------------------------

schedules = st.builds(
    Schedule,
    at=st.sampled_from(TIMES),
    cadence=st.sampled_from(("daily", "daily", "weekly", "monthly")),
    weekday=st.integers(0, 6),
).map(lambda s: s if s.cadence == "weekly" else Schedule(s.at, s.cadence, None))
# Waits mostly short, so that ticks fall inside due windows and changes come between them.
waits = st.sampled_from((5, 10, 15, 20, 30, 45, 60, 90, 180, 360))
steps = st.one_of(
    st.tuples(st.just("wait"), waits),
    st.tuples(st.just("wait"), waits),
    st.tuples(st.just("set"), st.sampled_from(CHANNELS), schedules),
    st.tuples(st.just("off"), st.sampled_from(CHANNELS)),
)


def data_for(cadence: PeriodKind, weekday: int | None, tz: str, now: datetime) -> DigestData:
    today = now.astimezone(ZoneInfo(tz)).date()
    return sample(span=digest_span(cadence, weekday, today), tz=tz, spend=100.0, average=80.0)


def run_tick(db: Database, tz: str, now: datetime) -> set[str]:
    """The scheduler's tick, and a second process's replay of it; the channels posted to."""
    posted: set[str] = set()
    for digest in list_digests(db):
        if not is_due(digest, tz, now):
            continue
        data = data_for(digest.cadence, digest.weekday, tz, now)
        if enqueue_digest(db, digest, data, now):
            posted.add(digest.channel_id)
        # A racing process that read the same row before the first one wrote.
        assert enqueue_digest(db, digest, data, now) == []
    return posted


@settings(max_examples=200, deadline=None)
@given(start=st.sampled_from(STARTS), history=st.lists(steps, min_size=20, max_size=200))
def test_at_most_one_digest_per_channel_and_local_day(
    start: tuple[str, date], history: list[tuple[object, ...]]
) -> None:
    tz, first_day = start
    db = open_db(":memory:")
    migrate(db)
    model = Reference(tz)
    now = datetime.combine(first_day, time(), tzinfo=ZoneInfo(tz)).astimezone(UTC)
    for step in history:
        match step:
            case ("wait", int(minutes)):
                now += timedelta(minutes=minutes)
                assert run_tick(db, tz, now) == model.tick(now), (now, step)
            case ("set", str(channel), Schedule() as schedule):
                set_digest(
                    db,
                    WS,
                    channel,
                    schedule.at,
                    actor="U1",
                    now=now,
                    cadence=PeriodKind(schedule.cadence),
                    weekday=schedule.weekday,
                )
                model.schedules[channel] = schedule
            case ("off", str(channel)):
                turn_off(db, WS, channel, actor="U1", now=now)
                model.schedules.pop(channel, None)
    # And what the outbox holds, read on its own: one post per channel and local day.
    days = [
        (row["channel_id"], from_text(row["created_at"]).astimezone(ZoneInfo(tz)).date())
        for row in db.query("SELECT channel_id, created_at FROM outbox WHERE action = 'post'")
    ]
    assert len(days) == len(set(days))
    assert sorted(days) == sorted((c, d) for c, ds in model.days_posted.items() for d in ds)
    db.conn.close()
