"""The daily digest: content against the simulator's oracle, once per local day, the chart
uploaded in three steps into the digest's thread, and the scheduler's digest jobs."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlite_utils import Database

from bot.asgi_server import serve_app
from bot.budgets.periods import day_start, digest_span
from bot.budgets.types import PeriodKind
from bot.jobs.delivery import drain
from bot.jobs.digest import (
    DigestData,
    enqueue_digest,
    gather,
    held_until,
    is_due,
    run_digest,
)
from bot.messages.digest import digest_message
from bot.scenario.client import ScenarioClient
from bot.scenario.errors import MAX_RANGE_DAYS
from bot.sim import slack_api
from bot.sim.scenario import ManualClock, Simulator, create_app
from bot.sim.team import SyntheticTeam
from bot.store import outbox
from bot.store.budgets import NewBudget, create_budget
from bot.store.db import migrate, open_db, to_text
from bot.store.digests import Digest, Held, list_digests, set_digest, turn_off

TZ = "Europe/Paris"
NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # 09:00 in Paris
TEAM = SyntheticTeam.build(7, NOW)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = open_db(tmp_path / "bot.db")
    migrate(database)
    return database


def client(ranges: list[tuple[datetime, datetime, str]] | None = None) -> ScenarioClient:
    """The simulator's client; given `ranges`, it notes each usage read's range and types."""
    simulator = Simulator(TEAM, clock=ManualClock(NOW))
    inner = httpx.ASGITransport(create_app(simulator))

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            query = request.url.params
            if ranges is not None and "startDate" in query:
                start = datetime.fromisoformat(query["startDate"].replace("Z", "+00:00"))
                end = datetime.fromisoformat(query["endDate"].replace("Z", "+00:00"))
                ranges.append((start, end, query.get("type", "")))
            return await inner.handle_async_request(request)

    async def no_wait(seconds: float) -> None:
        return None

    return ScenarioClient(
        base_url="http://simulator/v1",
        api_key="test-key",
        api_secret="test-secret",
        team_id=TEAM.team_id,
        transport=Recording(),
        sleep=no_wait,
    )


def make_digest(db: Database, at: time = time(9, 0)) -> Digest:
    _, digest = set_digest(db, "T1", "C_DIGEST", at, actor="U1", now=NOW)
    return digest


async def test_yesterday_is_the_local_day_and_matches_the_oracle(db: Database) -> None:
    digest = make_digest(db)
    create_budget(db, NewBudget("T1", PeriodKind.DAILY, 500, "C_DIGEST", "U1"), now=NOW)
    data = await gather(db, client(), digest, TZ, NOW, "https://app.example")
    start = datetime(2026, 11, 25, tzinfo=ZoneInfo(TZ))
    end = datetime(2026, 11, 26, tzinfo=ZoneInfo(TZ))
    assert data.day == date(2026, 11, 25)
    assert data.spend == pytest.approx(TEAM.cu_between(start, end))
    week = TEAM.cu_between(start - timedelta(days=7), start)
    assert data.average == pytest.approx(week / 7)
    assert len(data.chart_days) == 14 and data.chart_days[-1] == date(2026, 11, 25)
    total_chart = sum(values[-1] for values in data.chart.values())
    assert total_chart == pytest.approx(data.spend)
    assert data.limit == 500
    assert data.models and data.users and data.projects
    assert data.projects[0].name in {p.name for p in TEAM.projects}
    assert data.notes == []


def sample(**changes: object) -> DigestData:
    base = DigestData(
        span=digest_span(PeriodKind.DAILY, None, date(2026, 11, 26)),
        tz=TZ,
        spend=1200.0,
        average=1000.0,
        budgets=[],
        projects=[],
        users=[],
        models=[],
        alerts=[],
        chart_days=[],
        chart={},
        limit=None,
    )
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def test_the_message_compares_with_the_week_and_stays_within_limits() -> None:
    message = digest_message(sample())
    assert message is not None
    assert "1,200 CU" in message["text"] and "▲ 20 %" in message["text"]
    from slack_sdk.models.blocks import Block

    for block in message["blocks"]:
        Block.parse(block).validate_json()  # type: ignore[union-attr]
    assert len(message["blocks"]) <= 50


def test_the_chart_is_promised_only_when_there_is_one() -> None:
    """Finding 9: "the chart follows" was said when no chart was drawn."""

    def said(data: DigestData) -> str:
        message = digest_message(data)
        assert message is not None
        return " ".join(str(b) for b in message["blocks"])

    assert "chart follows" not in said(sample(chart={}))
    days = [date(2026, 11, 12) + timedelta(days=i) for i in range(14)]
    assert "chart follows" in said(sample(chart_days=days, chart={"Flux": [1.0] * 14}))


@pytest.mark.parametrize(("when_empty", "says"), [("line", True), ("skip", False)])
def test_a_day_without_spend_is_one_line_or_nothing(when_empty: str, says: bool) -> None:
    message = digest_message(sample(spend=0.0), when_empty=when_empty)
    assert (message is not None) is says
    if message:
        assert len(message["blocks"]) == 1 and "nothing was spent" in message["text"]


@pytest.mark.parametrize(
    ("now", "sent", "due"),
    [
        (datetime(2026, 11, 26, 7, 59, tzinfo=UTC), None, False),  # 08:59 Paris, not yet
        (datetime(2026, 11, 26, 8, 0, tzinfo=UTC), None, True),
        (datetime(2026, 11, 26, 8, 59, tzinfo=UTC), None, True),  # down for 59 minutes
        (datetime(2026, 11, 26, 9, 0, tzinfo=UTC), None, False),  # an hour late: skip
        (datetime(2026, 11, 26, 8, 30, tzinfo=UTC), "2026-11-26", False),  # already sent
        # 29 March 2026, spring forward in Paris: 09:00 local is 07:00 UTC that day.
        (datetime(2026, 3, 29, 7, 0, tzinfo=UTC), "2026-03-28", True),
        (datetime(2026, 3, 29, 6, 59, tzinfo=UTC), "2026-03-28", False),
    ],
)
def test_due_at_the_local_time_within_the_hour(now: datetime, sent: str | None, due: bool) -> None:
    digest = Digest(1, "T1", "C", time(9, 0), "line", sent)
    assert is_due(digest, TZ, now) is due


@pytest.fixture
async def slack() -> AsyncIterator[tuple[slack_api.FakeSlack, AsyncWebClient]]:
    fake = slack_api.FakeSlack()
    async with serve_app(slack_api.create_app(fake)) as origin:
        fake.origin = origin
        yield fake, AsyncWebClient(token="xoxb-test", base_url=f"{origin}/api/", retry_handlers=[])


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


async def test_once_per_day_with_the_chart_uploaded_into_its_thread(
    db: Database, slack: tuple[slack_api.FakeSlack, AsyncWebClient]
) -> None:
    fake, web = slack
    digest = make_digest(db)
    scenario = client()
    queued = await run_digest(db, scenario, digest, TZ, NOW, "https://app.example")
    assert [row["key"] for row in queued] == ["digest:1:2026-11-26", "digest:1:2026-11-26:chart"]
    again = await run_digest(
        db, scenario, list_digests(db)[0], TZ, NOW + timedelta(minutes=5), "https://app.example"
    )
    assert again == []

    async def client_for(workspace_id: str) -> AsyncWebClient:
        return web

    report = await drain(db, client_for, lambda: NOW)
    assert report.sent == 2 and report.failed == 0
    [message] = fake.top_level("C_DIGEST")
    assert "Scenario digest" in message.text
    steps = [c.method for c in fake.calls if c.method.startswith("files.")]
    assert steps == ["files.getUploadURLExternal", "files.completeUploadExternal"]
    [file_id] = fake.uploads
    assert png_size(fake.uploads[file_id]) == (1200, 600)
    assert fake.files[file_id]["thread_ts"] == message.ts
    complete = fake.calls_to("files.completeUploadExternal")[0].args
    assert complete["channel_id"] == "C_DIGEST"
    assert "Bar chart of Compute Units per day" in fake.calls_to("files.getUploadURLExternal")[
        0
    ].args.get("alt_txt", "")
    assert list_digests(db)[0].last_sent_day == "2026-11-26"


async def test_a_lost_upload_answer_is_not_uploaded_twice(
    db: Database, slack: tuple[slack_api.FakeSlack, AsyncWebClient]
) -> None:
    fake, web = slack
    digest = make_digest(db)
    data = await gather(db, client(), digest, TZ, NOW, "https://app.example")
    enqueue_digest(db, digest, data, NOW)
    fake.fail_next("files.completeUploadExternal", slack_api.Fault(status=500, after_effect=True))

    async def client_for(workspace_id: str) -> AsyncWebClient:
        return web

    await drain(db, client_for, lambda: NOW)
    later = NOW + timedelta(minutes=10)
    await drain(db, client_for, lambda: later)
    shared = [m for m in fake.all_messages() if m.files]
    assert len(shared) == 1
    statuses = {row["status"] for row in db.query("SELECT status FROM outbox")}
    assert statuses == {"sent"}


def test_a_local_day_starts_at_local_midnight_across_dst() -> None:
    assert day_start(date(2026, 10, 25), TZ) == datetime(2026, 10, 24, 22, tzinfo=UTC)
    assert day_start(date(2026, 10, 26), TZ) == datetime(2026, 10, 25, 23, tzinfo=UTC)
    # Santiago skips midnight when DST starts (6 September 2026): the day starts at 01:00.
    santiago = day_start(date(2026, 9, 6), "America/Santiago")
    assert santiago.astimezone(ZoneInfo("America/Santiago")).hour == 1


# ---------------------------------------------------------------------------------------------
# Weekly and monthly digests
# ---------------------------------------------------------------------------------------------


def local(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZoneInfo(TZ))


@pytest.mark.parametrize(
    ("cadence", "weekday", "first", "end", "before"),
    [
        # NOW is Thursday 26 November: the latest Monday digest covered 16–22 November, and
        # it is compared with the 4 weeks before.
        (PeriodKind.WEEKLY, 0, date(2026, 11, 16), date(2026, 11, 23), date(2026, 10, 19)),
        # A Wednesday digest: Wednesday 18 to Tuesday 24 November.
        (PeriodKind.WEEKLY, 2, date(2026, 11, 18), date(2026, 11, 25), date(2026, 10, 21)),
        # The latest monthly digest (1 November) covered October, against July to September.
        (PeriodKind.MONTHLY, None, date(2026, 10, 1), date(2026, 11, 1), date(2026, 7, 1)),
    ],
)
async def test_a_weekly_or_monthly_digest_reads_its_span_against_the_oracle(
    db: Database,
    cadence: PeriodKind,
    weekday: int | None,
    first: date,
    end: date,
    before: date,
) -> None:
    _, digest = set_digest(
        db, "T1", "C_DIGEST", time(9), actor="U1", now=NOW, cadence=cadence, weekday=weekday
    )
    create_budget(db, NewBudget("T1", PeriodKind.DAILY, 500, "C_DIGEST", "U1"), now=NOW)
    create_budget(db, NewBudget("T1", cadence, 9000, "C_DIGEST", "U1"), now=NOW)
    ranges: list[tuple[datetime, datetime, str]] = []
    data = await gather(db, client(ranges), digest, TZ, NOW, "https://app.example")
    assert (data.span.first, data.span.end) == (first, end)
    assert data.spend == pytest.approx(TEAM.cu_between(local(first), local(end)))
    spans_before = 4 if cadence is PeriodKind.WEEKLY else 3
    assert data.average == pytest.approx(
        TEAM.cu_between(local(before), local(first)) / spans_before
    )
    # Twelve bars, the last one the span itself, one read each.
    assert len(data.chart_days) == 12 and data.chart_days[-1] == first
    assert sum(values[-1] for values in data.chart.values()) == pytest.approx(data.spend)
    bars = [(s, e) for s, e, types in ranges if types == "model-usages"]
    assert len(bars) == 12
    assert all(e - s <= timedelta(days=MAX_RANGE_DAYS) for s, e, _ in ranges)
    assert sorted(bars)[-1] == (local(first), local(end))
    assert data.limit == 9000  # the team budget of the digest's cadence, not the daily one
    assert data.notes == []


async def test_the_weekly_digest_lists_the_alerts_of_its_whole_week(db: Database) -> None:
    _, digest = set_digest(
        db, "T1", "C_DIGEST", time(9), actor="U1", now=NOW, cadence=PeriodKind.WEEKLY, weekday=0
    )
    budget = create_budget(db, NewBudget("T1", PeriodKind.DAILY, 500, "C_DIGEST", "U1"), now=NOW)
    fired = {  # when, and whether it lies in Monday 16 to Sunday 22 November (Paris)
        datetime(2026, 11, 15, 22, 59, tzinfo=UTC): False,  # Sunday 15th, 23:59 in Paris
        datetime(2026, 11, 15, 23, 0, tzinfo=UTC): True,  # Monday 16th, 00:00
        datetime(2026, 11, 19, 13, 0, tzinfo=UTC): True,
        datetime(2026, 11, 22, 22, 59, tzinfo=UTC): True,  # Sunday 22nd, 23:59
        datetime(2026, 11, 22, 23, 0, tzinfo=UTC): False,  # Monday 23rd, 00:00
    }
    for level, at in enumerate(fired, start=1):
        db.execute(
            "INSERT INTO alert_state (budget_id, period_key, kind, level, spend_cu, limit_cu,"
            " fired_at) VALUES (?, ?, 'threshold', ?, 1, 1, ?)",
            [budget.id, f"daily:{at.date()}@{TZ}", level, to_text(at)],
        )
    data = await gather(db, client(), digest, TZ, NOW, "https://app.example")
    assert [a.at for a in data.alerts] == [at for at, inside in fired.items() if inside]
    message = digest_message(data)
    assert message is not None
    said = " ".join(str(b) for b in message["blocks"])
    assert "Alerts last week" in said and "at Thu 19 Nov 14:00" in said


def test_the_weekly_and_monthly_messages_name_their_span() -> None:
    weekly = digest_message(
        sample(span=digest_span(PeriodKind.WEEKLY, 0, date(2026, 11, 30)), average=1500.0)
    )
    assert weekly is not None
    assert weekly["text"].startswith("☀️ Scenario weekly digest for Mon 23 Nov – Sun 29 Nov 2026")
    assert "▼ 20 % against the 4-week average of 1,500 CU" in weekly["text"]
    assert "spent last week" in str(weekly["blocks"])
    monthly = digest_message(
        sample(span=digest_span(PeriodKind.MONTHLY, None, date(2027, 1, 1)), average=0.0)
    )
    assert monthly is not None
    assert monthly["text"].startswith("☀️ Scenario monthly digest for December 2026")
    assert "no spend in the 3 months before" in monthly["text"]
    quiet = sample(span=digest_span(PeriodKind.MONTHLY, None, date(2027, 1, 1)), spend=0.0)
    assert digest_message(quiet, when_empty="skip") is None
    line = digest_message(quiet)
    assert (
        line is not None and "monthly digest for December 2026: nothing was spent" in line["text"]
    )


async def test_a_monthly_digest_goes_out_once_with_a_twelve_month_chart(
    db: Database, slack: tuple[slack_api.FakeSlack, AsyncWebClient]
) -> None:
    fake, web = slack
    _, digest = set_digest(
        db, "T1", "C_DIGEST", time(9), actor="U1", now=NOW, cadence=PeriodKind.MONTHLY
    )
    first = datetime(2026, 12, 1, 8, 5, tzinfo=UTC)  # 1 December, 09:05 in Paris
    assert is_due(digest, TZ, first)
    queued = await run_digest(db, client(), digest, TZ, first, "https://app.example")
    assert [row["key"] for row in queued] == ["digest:1:2026-11", "digest:1:2026-11:chart"]
    [again] = list_digests(db)
    assert again.last_sent_day == "2026-11" and not is_due(again, TZ, first)
    assert await run_digest(db, client(), again, TZ, first, "https://app.example") == []

    async def client_for(workspace_id: str) -> AsyncWebClient:
        return web

    await drain(db, client_for, lambda: first)
    [message] = fake.top_level("C_DIGEST")
    assert "monthly digest for November 2026" in message.text
    [upload] = [c.args for c in fake.calls_to("files.getUploadURLExternal")]
    assert "per month from Dec 2025 to Nov 2026" in upload.get("alt_txt", "")


# ---------------------------------------------------------------------------------------------
# At most one digest per channel and local day, across `off`/on and changes of cadence
# ---------------------------------------------------------------------------------------------


def data_for(digest: Digest, now: datetime, tz: str = TZ, spend: float = 1200.0) -> DigestData:
    """What `gather` hands over, without Scenario: the digest's span on the local day."""
    today = now.astimezone(ZoneInfo(tz)).date()
    return sample(span=digest_span(digest.cadence, digest.weekday, today), tz=tz, spend=spend)


def tick(db: Database, tz: str, now: datetime) -> list[str]:
    """What the scheduler does at `now`: each due digest queued; the keys queued."""
    keys: list[str] = []
    for digest in list_digests(db):
        if is_due(digest, tz, now):
            keys += [
                row["key"] for row in enqueue_digest(db, digest, data_for(digest, now, tz), now)
            ]
    return keys


def posts(db: Database) -> list[str]:
    return [r["dedup_key"] for r in db.query("SELECT dedup_key FROM outbox WHERE action = 'post'")]


def paris(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(TZ)).astimezone(UTC)


THURSDAY = date(2026, 11, 26)  # NOW's day


def test_off_and_on_within_the_catch_up_sends_nothing_more_that_day(db: Database) -> None:
    first = make_digest(db)
    assert tick(db, TZ, paris(THURSDAY, 9)) == ["digest:1:2026-11-26"]
    turn_off(db, "T1", "C_DIGEST", actor="U1", now=paris(THURSDAY, 9, 5))
    again = make_digest(db)
    assert again.id != first.id  # a new row: a new dedup key, which used to post again
    assert held_until(again, TZ, paris(THURSDAY, 9, 10)) == (date(2026, 11, 27), Held.CHANNEL_GIVEN)
    assert tick(db, TZ, paris(THURSDAY, 9, 20)) == []
    # A process that saw it due before the off (or raced this one) is refused in the
    # transaction too.
    assert enqueue_digest(db, again, data_for(again, paris(THURSDAY, 9, 25)), NOW) == []
    assert posts(db) == ["digest:1:2026-11-26"]
    assert tick(db, TZ, paris(THURSDAY + timedelta(days=1), 9)) == ["digest:2:2026-11-27"]


def test_daily_made_weekly_after_the_daily_went_waits_for_its_next_day(db: Database) -> None:
    """Finding (b): `weekly thu` on the Thursday morning the daily went: no weekly that
    day (it would repeat the day just reported), the weekly a week later."""
    make_digest(db)
    assert tick(db, TZ, paris(THURSDAY, 9)) == ["digest:1:2026-11-26"]
    _, weekly = set_digest(
        db,
        "T1",
        "C_DIGEST",
        time(9),
        actor="U1",
        now=paris(THURSDAY, 9, 10),
        cadence=PeriodKind.WEEKLY,
        weekday=3,
    )
    assert held_until(weekly, TZ, paris(THURSDAY, 9, 10)) == (date(2026, 12, 3), Held.CHANNEL_GIVEN)
    for day in range(7):  # this Thursday's catch-up and each morning until Wednesday
        for minute in (15, 45):
            assert tick(db, TZ, paris(THURSDAY + timedelta(days=day), 9, minute)) == []
    next_thursday = paris(date(2026, 12, 3), 9)
    assert tick(db, TZ, next_thursday)[0] == "digest:1:2026-W48-4"
    assert len(posts(db)) == 2


def test_a_weekly_moved_to_later_on_the_day_it_went_waits_a_week(db: Database) -> None:
    set_digest(
        db, "T1", "C_DIGEST", time(9), actor="U1", now=NOW, cadence=PeriodKind.WEEKLY, weekday=3
    )
    assert tick(db, TZ, paris(THURSDAY, 9)) == ["digest:1:2026-W47-4"]
    _, later = set_digest(
        db,
        "T1",
        "C_DIGEST",
        time(17),
        actor="U1",
        now=NOW,
        cadence=PeriodKind.WEEKLY,
        weekday=3,
    )
    assert held_until(later, TZ, paris(THURSDAY, 10)) == (date(2026, 12, 3), Held.CHANNEL_GIVEN)
    assert tick(db, TZ, paris(THURSDAY, 17)) == []


def test_a_quiet_digest_that_said_nothing_leaves_the_day_free(db: Database) -> None:
    """Nothing spent and `quiet`: the channel got nothing, so a weekly digest set that
    morning may still go (the rule is about what the channel sees)."""
    _, quiet = set_digest(db, "T1", "C_DIGEST", time(9), actor="U1", now=NOW, when_empty="skip")
    at = paris(THURSDAY, 9)
    assert enqueue_digest(db, quiet, data_for(quiet, at, spend=0.0), at) == []
    assert list_digests(db)[0].last_sent_day == "2026-11-26"  # the span is done, though
    _, weekly = set_digest(
        db, "T1", "C_DIGEST", time(9, 30), actor="U1", now=at, cadence=PeriodKind.WEEKLY, weekday=3
    )
    assert weekly.channel_given_at is None
    assert tick(db, TZ, paris(THURSDAY, 9, 30)) == ["digest:1:2026-W47-4"]


def test_daily_made_monthly_on_new_years_day_waits_for_the_first_of_february(
    db: Database,
) -> None:
    new_year = date(2027, 1, 1)
    set_digest(db, "T1", "C_DIGEST", time(9), actor="U1", now=NOW)
    assert tick(db, TZ, paris(new_year, 9)) == ["digest:1:2027-01-01"]
    _, monthly = set_digest(
        db, "T1", "C_DIGEST", time(9), actor="U1", now=NOW, cadence=PeriodKind.MONTHLY
    )
    assert held_until(monthly, TZ, paris(new_year, 9, 5)) == (date(2027, 2, 1), Held.CHANNEL_GIVEN)
    assert tick(db, TZ, paris(new_year, 9, 30)) == []
    assert tick(db, TZ, paris(date(2027, 2, 1), 9))[0] == "digest:1:2027-01"


@pytest.mark.parametrize(
    ("tz", "day", "at", "sent_utc"),
    [
        # Auckland is a day ahead of UTC: its Thursday 08:00 is Wednesday 19:00 UTC, and the
        # day recorded is Auckland's.
        ("Pacific/Auckland", date(2026, 11, 26), time(8), datetime(2026, 11, 25, 19, tzinfo=UTC)),
        # Spring forward in Auckland (27 September 2026): 02:30 does not exist; the digest
        # goes when the clocks jump over it (03:30 NZDT), 14:30 UTC the day before.
        (
            "Pacific/Auckland",
            date(2026, 9, 27),
            time(2, 30),
            datetime(2026, 9, 26, 14, 30, tzinfo=UTC),
        ),
        # Fall back in Paris (25 October 2026): 02:30 happens twice; one digest.
        (
            "Europe/Paris",
            date(2026, 10, 25),
            time(2, 30),
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        ),
    ],
)
def test_one_digest_per_local_day_in_zones_far_from_utc_and_across_dst(
    db: Database, tz: str, day: date, at: time, sent_utc: datetime
) -> None:
    set_digest(db, "T1", "C_DIGEST", at, actor="U1", now=NOW)
    assert tick(db, tz, sent_utc - timedelta(minutes=1)) == []
    assert tick(db, tz, sent_utc) == [f"digest:1:{day.isoformat()}"]
    assert list_digests(db)[0].channel_given_at == sent_utc
    turn_off(db, "T1", "C_DIGEST", actor="U1", now=sent_utc)
    set_digest(db, "T1", "C_DIGEST", at, actor="U1", now=sent_utc)
    for minutes in (10, 30, 59, 61):  # 61: the second 02:30 of a fall-back night, in Paris
        assert tick(db, tz, sent_utc + timedelta(minutes=minutes)) == []
    tomorrow = datetime.combine(day + timedelta(days=1), at, tzinfo=ZoneInfo(tz))
    assert tick(db, tz, tomorrow.astimezone(UTC)) == [f"digest:2:{day + timedelta(days=1)}"]


def test_a_digest_that_never_got_through_does_not_hold_the_next_one(db: Database) -> None:
    """The bot was not in the channel: today's post failed for good. Once invited, turning
    the digest off and on sends today's after all — once: the failed post is dropped, so a
    later message getting through cannot revive it into a second digest."""
    make_digest(db)
    assert tick(db, TZ, paris(THURSDAY, 9)) == ["digest:1:2026-11-26"]
    for row in list(db.query("SELECT id FROM outbox")):  # the post, and its chart if any
        outbox.mark_failed(db, row["id"], error="not_in_channel")
    turn_off(db, "T1", "C_DIGEST", actor="U1", now=paris(THURSDAY, 9, 10))
    again = make_digest(db)
    assert again.channel_given_at is None and held_until(again, TZ, paris(THURSDAY, 9, 10)) is None
    assert tick(db, TZ, paris(THURSDAY, 9, 20)) == ["digest:2:2026-11-26"]
    assert (
        outbox.requeue_failed(
            db, workspace_id="T1", channel_id="C_DIGEST", keep_failed=frozenset(), now=NOW
        )
        == 0
    )
    pending = list(db.query("SELECT dedup_key FROM outbox WHERE status = 'pending'"))
    assert [r["dedup_key"] for r in pending] == posts(db)[1:] == ["digest:2:2026-11-26"]


def test_a_quiet_span_moved_later_is_held_for_what_it_is(db: Database) -> None:
    _, quiet = set_digest(db, "T1", "C_DIGEST", time(9), actor="U1", now=NOW, when_empty="skip")
    at = paris(THURSDAY, 9)
    assert enqueue_digest(db, quiet, data_for(quiet, at, spend=0.0), at) == []
    _, later = set_digest(db, "T1", "C_DIGEST", time(17), actor="U1", now=at, when_empty="skip")
    assert held_until(later, TZ, paris(THURSDAY, 10)) == (date(2026, 11, 27), Held.SPAN_DONE)


def test_held_until_says_nothing_on_a_day_the_digest_is_not_due(db: Database) -> None:
    make_digest(db)
    assert tick(db, TZ, paris(THURSDAY, 9)) == ["digest:1:2026-11-26"]
    _, weekly = set_digest(
        db, "T1", "C_DIGEST", time(17), actor="U1", now=NOW, cadence=PeriodKind.WEEKLY, weekday=0
    )
    assert held_until(weekly, TZ, paris(THURSDAY, 10)) is None  # Mondays only


def test_a_timezone_change_does_not_give_a_channel_two_digests_in_its_new_day(
    db: Database,
) -> None:
    """Auckland's Friday 09:00 digest is Thursday 12:00 in Los Angeles: moved there and to
    13:00, the channel already had the Los Angeles Thursday's."""
    friday_auckland = datetime(2026, 11, 27, 9, tzinfo=ZoneInfo("Pacific/Auckland"))
    sent = friday_auckland.astimezone(UTC)
    make_digest(db)
    assert tick(db, "Pacific/Auckland", sent) == ["digest:1:2026-11-27"]
    _, moved = set_digest(db, "T1", "C_DIGEST", time(13), actor="U1", now=sent)
    one_pm = datetime(2026, 11, 26, 13, tzinfo=ZoneInfo("America/Los_Angeles")).astimezone(UTC)
    assert one_pm - sent == timedelta(hours=1)
    assert held_until(moved, "America/Los_Angeles", one_pm - timedelta(minutes=30)) == (
        date(2026, 11, 27),
        Held.CHANNEL_GIVEN,
    )
    assert tick(db, "America/Los_Angeles", one_pm) == []
