"""Budget periods: which span of time a budget counts, and a stable name for it.

Everything here is pure. ``now`` is always an argument and the only time source is
``zoneinfo``, so the same inputs give the same :class:`Period` on any machine.

Calendar periods (``daily``, ``weekly``, ``monthly``) are cut at local midnight in an
IANA timezone. Their bounds are UTC instants and they *tile* time: ``next_period(p).start
== p.end`` and ``previous_period(p).end == p.start``, so every instant belongs to exactly
one period of a kind. A day is 23 or 25 hours long across a DST change.

Where local midnight does not exist (clocks jump from 00:00 to 01:00, as in
``America/Santiago`` or ``Asia/Beirut``), the period starts at the first valid instant
after it; where it happens twice (``America/Havana`` falls back from 01:00 to 00:00), it
starts at the first occurrence.

    >>> from datetime import datetime, UTC
    >>> p = period_at(PeriodKind.DAILY, datetime(2026, 3, 29, 12, tzinfo=UTC), "Europe/Paris")
    >>> p.key, p.start.isoformat(), p.duration.total_seconds() / 3600
    ('daily:2026-03-29@Europe/Paris', '2026-03-28T23:00:00+00:00', 23.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

from bot.budgets.types import PeriodKind
from bot.timezones import validate_timezone

__all__ = [
    "CALENDAR_KINDS",
    "ROLLING_LENGTHS",
    "DigestSpan",
    "Period",
    "digest_span",
    "local_day_range",
    "next_period",
    "period_at",
    "previous_period",
    "sends_on",
    "this_month",
    "this_week",
]

CALENDAR_KINDS: frozenset[PeriodKind] = frozenset(
    {PeriodKind.DAILY, PeriodKind.WEEKLY, PeriodKind.MONTHLY}
)

ROLLING_LENGTHS: Mapping[PeriodKind, timedelta] = MappingProxyType(
    {
        PeriodKind.ROLLING_24H: timedelta(hours=24),
        PeriodKind.ROLLING_7D: timedelta(days=7),
        PeriodKind.ROLLING_30D: timedelta(days=30),
    }
)

_ZERO = timedelta(0)
# tzdata transitions fall on whole seconds, so searching for one at this resolution is exact.
_SECOND = timedelta(seconds=1)
# Bounds the walk in period_at; real zones need at most one step either way, and a few
# more only around a skipped day such as Pacific/Apia's 2011-12-30.
_MAX_STEPS = 8


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open span ``[start, end)`` of UTC instants that a budget counts.

    ``key`` names the period for alert de-duplication: an alert is sent once per
    (budget, key, threshold). Formats:

    - ``daily:2026-11-26@Europe/Paris``, ``weekly:2026-W48@Europe/Paris`` (ISO week),
      ``monthly:2026-11@Europe/Paris``: one key per calendar period and timezone, so a
      timezone change starts a fresh period rather than reusing an old one's alerts.
    - ``billing:2026-11-01T00:00:00Z``: the plan period's start, UTC, to the second.
    - ``rolling:24h``, ``rolling:7d``, ``rolling:30d``: a constant, because a rolling
      window never ends. Re-arming a threshold once spend falls back under it is the
      evaluator's job, not this key's.
    """

    kind: PeriodKind
    start: datetime
    end: datetime
    tz: str
    key: str

    def __post_init__(self) -> None:
        # Normalise to UTC so that equality, hashing and isoformat() do not depend on
        # which zone the caller happened to pass the same instant in.
        object.__setattr__(self, "start", _as_utc(self.start, "start"))
        object.__setattr__(self, "end", _as_utc(self.end, "end"))
        if self.start >= self.end:
            raise ValueError(f"a period must end after it starts: {self.start} >= {self.end}")

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def contains(self, instant: datetime) -> bool:
        """Whether ``instant`` lies in ``[start, end)``."""
        return self.start <= _as_utc(instant, "instant") < self.end

    def elapsed_fraction(self, now: datetime) -> float:
        """How much of the period has passed at ``now``, clamped to 0..1."""
        elapsed = _as_utc(now, "now") - self.start
        return min(1.0, max(0.0, elapsed / self.duration))

    def time_left(self, now: datetime) -> timedelta:
        """Time until the period ends; zero once it has (always zero for rolling windows)."""
        return max(_ZERO, self.end - _as_utc(now, "now"))


def period_at(
    kind: PeriodKind | str,
    now: datetime,
    tz: str,
    *,
    billing: tuple[datetime, datetime] | None = None,
) -> Period:
    """The period of ``kind`` that a budget is counting at ``now``.

    - ``daily``/``weekly``/``monthly``: the calendar day, ISO week (from Monday) or month
      containing ``now`` in the timezone ``tz``.
    - ``billing``: the plan period Scenario reports (``period.start``/``period.end`` of
      ``GET /teams/{id}/limits``), passed as ``billing``; it must contain ``now``.
    - ``24h``/``7d``/``30d``: ``[now - length, now)``. The window ends at ``now`` itself,
      so unlike the other kinds it does not *contain* ``now``; its ``key`` is constant
      (see :class:`Period`).

    ``now`` must be timezone-aware. Raises ``ValueError`` for an unknown timezone, a
    naive datetime, or a missing or non-matching billing period.
    """
    kind = PeriodKind(kind)
    tz = validate_timezone(tz)
    now = _as_utc(now, "now")
    if kind in CALENDAR_KINDS:
        return _calendar_period_at(kind, now, tz)
    if kind is PeriodKind.BILLING:
        return _billing_period(now, tz, billing)
    length = ROLLING_LENGTHS[kind]
    return Period(kind, now - length, now, tz, f"rolling:{kind.value}")


def next_period(p: Period) -> Period:
    """The calendar period right after ``p``: its ``start`` is ``p.end``."""
    cal = _calendar(p.kind)
    zone = ZoneInfo(p.tz)
    label = cal.step(_label_of(p), 1)
    # A day that a zone skipped entirely (Pacific/Apia, 2011-12-30) has no instants;
    # it is passed over so that every period returned is non-empty.
    while _boundary(cal.step(label, 1), zone) <= p.end:
        label = cal.step(label, 1)
    return _calendar_period(p.kind, label, p.tz)


def previous_period(p: Period) -> Period:
    """The calendar period right before ``p``: its ``end`` is ``p.start``."""
    cal = _calendar(p.kind)
    zone = ZoneInfo(p.tz)
    label = cal.step(_label_of(p), -1)
    while _boundary(label, zone) >= p.start:
        label = cal.step(label, -1)
    return _calendar_period(p.kind, label, p.tz)


def day_start(day: date, tz: str) -> datetime:
    """Where the local `day` begins, as a UTC instant (the daily period holding its noon:
    correct where midnight is skipped or repeated by a clock change)."""
    noon = datetime.combine(day, time(12), ZoneInfo(validate_timezone(tz)))
    return period_at(PeriodKind.DAILY, noon, tz).start


def local_day_range(now: datetime, tz: str, days_back: int = 0) -> tuple[datetime, datetime]:
    """UTC ``[start, end)`` of the local day ``days_back`` days before today.

    ``0`` is today (whose end is still in the future: clamp it to ``now`` when querying),
    ``1`` is yesterday.
    """
    if days_back < 0:
        raise ValueError(f"days_back must be 0 or more, not {days_back}")
    p = period_at(PeriodKind.DAILY, now, tz)
    for _ in range(days_back):
        p = previous_period(p)
    return p.start, p.end


def this_week(now: datetime, tz: str) -> tuple[datetime, datetime]:
    """UTC ``[start, end)`` of the local ISO week (from Monday 00:00) containing ``now``."""
    p = period_at(PeriodKind.WEEKLY, now, tz)
    return p.start, p.end


def this_month(now: datetime, tz: str) -> tuple[datetime, datetime]:
    """UTC ``[start, end)`` of the local calendar month containing ``now``."""
    p = period_at(PeriodKind.MONTHLY, now, tz)
    return p.start, p.end


# --- calendar arithmetic -------------------------------------------------------------
#
# A calendar period is named by a *label*: the local date its boundary falls on (the day
# itself, the Monday of the ISO week, the 1st of the month). Labels are plain dates, so
# stepping between them is exact; only turning a label into an instant involves a zone.


@dataclass(frozen=True, slots=True)
class _Calendar:
    label: Callable[[date], date]
    step: Callable[[date, int], date]
    name: Callable[[date], str]


def _add_months(d: date, n: int) -> date:
    months = d.year * 12 + (d.month - 1) + n
    return date(months // 12, months % 12 + 1, 1)


def _iso_week_name(d: date) -> str:
    iso = d.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


_CALENDARS: Mapping[PeriodKind, _Calendar] = MappingProxyType(
    {
        PeriodKind.DAILY: _Calendar(
            label=lambda d: d,
            step=lambda d, n: d + timedelta(days=n),
            name=date.isoformat,
        ),
        PeriodKind.WEEKLY: _Calendar(
            label=lambda d: d - timedelta(days=d.weekday()),
            step=lambda d, n: d + timedelta(weeks=n),
            name=_iso_week_name,
        ),
        PeriodKind.MONTHLY: _Calendar(
            label=lambda d: d.replace(day=1),
            step=_add_months,
            name=lambda d: f"{d.year:04d}-{d.month:02d}",
        ),
    }
)


def _calendar(kind: PeriodKind) -> _Calendar:
    try:
        return _CALENDARS[kind]
    except KeyError:
        raise ValueError(
            f"only calendar periods (daily, weekly, monthly) have a next and previous "
            f"period, not {kind.value}"
        ) from None


def _boundary(label: date, zone: ZoneInfo) -> datetime:
    """The first valid instant at or after local midnight starting ``label``, in UTC."""
    naive = datetime.combine(label, time())
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    candidates = [
        c.astimezone(UTC)
        for c in (first, second)
        if c.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive
    ]
    if candidates:
        # Two candidates when midnight happens twice (clocks fell back onto it): the
        # earlier one, so that the whole repeated hour belongs to the new day.
        return min(candidates)
    # Midnight fell in a gap. The UTC readings with the offsets before and after the jump
    # bracket the transition; the transition itself is where the local clock first reads
    # midnight or later, whether the gap starts at midnight or before it.
    low, high = sorted(c.astimezone(UTC) for c in (first, second))
    after = high.astimezone(zone).utcoffset()
    # Invariant: `low` reads the offset before the jump, `high` the one after. Whole
    # seconds keep the bisection exact.
    gap = int((high - low) / _SECOND)
    while gap > 1:
        mid = low + (gap // 2) * _SECOND
        if mid.astimezone(zone).utcoffset() == after:
            high = mid
        else:
            low = mid
        gap = int((high - low) / _SECOND)
    return high


def _calendar_period(kind: PeriodKind, label: date, tz: str) -> Period:
    cal = _CALENDARS[kind]
    zone = ZoneInfo(tz)
    start = _boundary(label, zone)
    end = _boundary(cal.step(label, 1), zone)
    return Period(kind, start, end, tz, f"{kind.value}:{cal.name(label)}@{tz}")


def calendar_period_of_key(key: str) -> Period | None:
    """The calendar period a key names (`monthly:2026-11@Europe/Paris`), None for any other
    key (rolling, billing) or one that does not parse."""
    try:
        kind_name, rest = key.split(":", 1)
        name, tz = rest.rsplit("@", 1)
        kind = PeriodKind(kind_name)
        if kind is PeriodKind.WEEKLY:
            label = date.fromisocalendar(int(name[:4]), int(name[6:]), 1)
        elif kind is PeriodKind.MONTHLY:
            label = date(int(name[:4]), int(name[5:7]), 1)
        elif kind is PeriodKind.DAILY:
            label = date.fromisoformat(name)
        else:
            return None
        period = _calendar_period(kind, label, validate_timezone(tz))
    except (ValueError, KeyError):
        return None
    return period if period.key == key else None


def _calendar_period_at(kind: PeriodKind, now: datetime, tz: str) -> Period:
    cal = _CALENDARS[kind]
    zone = ZoneInfo(tz)
    label = cal.label(now.astimezone(zone).date())
    # The local date of `now` is usually the answer, but not always: after clocks fall
    # back across midnight, the repeated hour reads as the old day yet lies after the new
    # day's boundary. Walk to the period whose bounds actually hold `now`.
    for _ in range(_MAX_STEPS):
        start = _boundary(label, zone)
        end = _boundary(cal.step(label, 1), zone)
        if now < start:
            label = cal.step(label, -1)
        elif now >= end:
            label = cal.step(label, 1)
        else:
            return _calendar_period(kind, label, tz)
    raise ValueError(f"cannot place {now.isoformat()} in a {kind.value} period of {tz}")


def _label_of(p: Period) -> date:
    # A non-empty period starts on its own local date: a gap over midnight moves the start
    # later into that day, and a gap long enough to reach the next day empties the period.
    cal = _calendar(p.kind)
    return cal.label(p.start.astimezone(ZoneInfo(p.tz)).date())


# --- digest spans --------------------------------------------------------------------
#
# A digest sent on a local day covers the span of local days just before it: the day before
# (daily), the seven days before (weekly: from Monday to Sunday when it goes out on a
# Monday, the default) or the month before (monthly, sent on the 1st). Spans step like the
# calendar periods' labels, so twelve weeks or months back is exact arithmetic on dates.


@dataclass(frozen=True, slots=True)
class DigestSpan:
    """The local days ``[first, end)`` a digest covers, and the key it is sent once under.

    ``key`` is the day the digest goes out for a daily one (what it always was), the ISO
    week for a weekly one (``2026-W49``; ``2026-W49-5`` when its week starts on a Friday)
    and the month for a monthly one (``2026-11``)."""

    cadence: PeriodKind
    first: date
    end: date

    @property
    def last(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def key(self) -> str:
        if self.cadence is PeriodKind.DAILY:
            return self.end.isoformat()
        if self.cadence is PeriodKind.WEEKLY:
            day = "" if self.first.weekday() == 0 else f"-{self.first.isoweekday()}"
            return _iso_week_name(self.first) + day
        return _CALENDARS[PeriodKind.MONTHLY].name(self.first)

    def bounds(self, tz: str) -> tuple[datetime, datetime]:
        """UTC ``[start, end)``: from the local midnight starting ``first`` to the one
        starting ``end``."""
        return day_start(self.first, tz), day_start(self.end, tz)

    def previous(self, count: int) -> list[DigestSpan]:
        """The ``count`` spans before this one, oldest first."""
        step = _CALENDARS[self.cadence].step
        return [
            DigestSpan(self.cadence, step(self.first, -n), step(self.first, 1 - n))
            for n in range(count, 0, -1)
        ]


def sends_on(cadence: PeriodKind, weekday: int | None, day: date) -> bool:
    """Whether a digest of ``cadence`` goes out on the local ``day``: every day, on its
    ``weekday`` (0 = Monday) or on the 1st of the month."""
    if cadence is PeriodKind.WEEKLY:
        return day.weekday() == weekday
    if cadence is PeriodKind.MONTHLY:
        return day.day == 1
    return True


def digest_span(cadence: PeriodKind, weekday: int | None, today: date) -> DigestSpan:
    """The span of the latest digest of ``cadence`` due on or before the local day
    ``today`` (sent on ``today`` itself when it is a day it goes out)."""
    if cadence not in CALENDAR_KINDS:
        raise ValueError(f"a digest is daily, weekly or monthly, not {cadence.value}")
    sent_on = today
    if cadence is PeriodKind.WEEKLY:
        sent_on = today - timedelta(days=(today.weekday() - (weekday or 0)) % 7)
    elif cadence is PeriodKind.MONTHLY:
        sent_on = today.replace(day=1)
    return DigestSpan(cadence, _CALENDARS[cadence].step(sent_on, -1), sent_on)


# --- billing -------------------------------------------------------------------------


def _billing_period(now: datetime, tz: str, billing: tuple[datetime, datetime] | None) -> Period:
    if billing is None:
        raise ValueError(
            "a billing budget needs the plan period reported by Scenario "
            "(period.start and period.end of GET /teams/{id}/limits); none was given"
        )
    start, end = (_as_utc(b, "billing period bound") for b in billing)
    if start >= end:
        raise ValueError(
            f"the billing period must end after it starts: {start.isoformat()} .. {end.isoformat()}"
        )
    if not start <= now < end:
        raise ValueError(
            f"{now.isoformat()} is outside the billing period "
            f"{start.isoformat()} .. {end.isoformat()}; the plan period from Scenario is stale"
        )
    return Period(PeriodKind.BILLING, start, end, tz, f"billing:{start:%Y-%m-%dT%H:%M:%S}Z")


# --- small helpers -------------------------------------------------------------------


def _as_utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got naive {value!r}")
    return value.astimezone(UTC)
