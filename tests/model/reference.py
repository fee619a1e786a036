"""Reference model of the budget bot's alerting rules, written from the contract alone.

It deliberately shares no code and no reading with ``bot/``: a model-based test is only worth
something if the model can disagree with the product.  Every rule is applied literally and by
brute force (spend is re-summed over all jobs at every check), so that each line can be checked
against the contract by eye.

State is applied eagerly, operation by operation, in call order.  That is equivalent to replaying
the whole log from scratch, because every rule only looks at the past: a check sees the jobs that
were added before it was called, like the bot sees the jobs the API returns when it checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

CALENDAR_PERIODS = frozenset({"daily", "weekly", "monthly"})
ROLLING = "rolling_24h"
PERIODS = CALENDAR_PERIODS | {ROLLING}
TEAM_SCOPE = "team"
ROLLING_WINDOW = timedelta(hours=24)
# A rolling level re-arms only below this fraction of itself, so spend hovering at a level
# does not make the bot flap between "back under" and "crossed".
REARM_FRACTION = 0.9

Event = tuple[object, ...]
MessageId = tuple[int, str]


@dataclass(frozen=True)
class Job:
    time: datetime
    cu: float
    scope_keys: frozenset[str]


@dataclass(frozen=True)
class BudgetSpec:
    id: int
    limit_cu: float
    thresholds: frozenset[int]
    period: str
    scope: str
    tz: str


@dataclass(frozen=True)
class TopState:
    highest_level: int | None
    limit_cu: float
    thresholds: tuple[int, ...]
    acknowledged_by: str | None
    snoozed_until: datetime | None


@dataclass(frozen=True)
class Message:
    top: TopState
    replies: tuple[Event, ...]
    first_event: Event


# --- calendar periods -------------------------------------------------------------------------


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {value!r}")


@cache
def local_day_start(tz_name: str, day: date) -> datetime:
    """First UTC instant whose local date (in ``tz_name``) is ``day``, or later.

    Normally that is local midnight.  When midnight is ambiguous (clocks go back over it) the
    day starts at its first occurrence.  When midnight is skipped (clocks jump over it) the day
    starts at the jump itself, which is found by bisection so that gaps not aligned on midnight
    (or a whole skipped day, as in Pacific/Apia on 2011-12-30) are handled too.
    """
    tz = ZoneInfo(tz_name)
    midnight = datetime(day.year, day.month, day.day)
    candidates = [midnight.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)]
    real = [c for c in candidates if c.astimezone(tz).replace(tzinfo=None) == midnight]
    if real:
        return min(real)
    # In a gap, one reading of midnight lands before the jump (still on an earlier local date)
    # and the other after it (already on ``day`` or later); the jump lies between them.
    lo = int(min(candidates).timestamp())
    hi = int(max(candidates).timestamp())
    assert datetime.fromtimestamp(lo, tz).date() < day <= datetime.fromtimestamp(hi, tz).date()
    # tzdata transitions fall on whole seconds, so bisecting POSIX seconds finds the exact jump.
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).date() >= day:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def calendar_period(period: str, tz_name: str, at: datetime) -> tuple[str, datetime]:
    """(label, UTC start) of the local calendar period containing ``at``."""
    _require_aware(at, "at")
    local_date = at.astimezone(ZoneInfo(tz_name)).date()
    if period == "daily":
        first_day = local_date
    elif period == "weekly":
        first_day = local_date - timedelta(days=local_date.weekday())  # ISO: Monday is 0
    elif period == "monthly":
        first_day = local_date.replace(day=1)
    else:
        raise ValueError(f"not a calendar period: {period!r}")
    return first_day.isoformat(), local_day_start(tz_name, first_day)


# --- the model --------------------------------------------------------------------------------


@dataclass
class _Budget:
    spec: BudgetSpec  # the current configuration; edits replace it
    removed: bool = False
    snoozed_until: datetime | None = None
    # Spend the last successful check saw; edits re-arm against it, never against fresh data.
    last_seen_spend: float = 0.0
    # Passed levels P per message label: calendar period start date, or rolling episode.
    passed: dict[str, set[int]] = field(default_factory=dict)
    open_episode: str | None = None
    episodes_opened: int = 0

    @property
    def is_rolling(self) -> bool:
        return self.spec.period == ROLLING


@dataclass
class _Message:
    first_event: Event
    top: TopState
    replies: list[Event] = field(default_factory=list)
    acknowledged_by: str | None = None


class Reference:
    def __init__(self) -> None:
        self._jobs: list[Job] = []
        self._budgets: dict[int, _Budget] = {}
        self._messages: dict[MessageId, _Message] = {}
        self._now: datetime | None = None

    # --- inputs -------------------------------------------------------------------------------

    def add_job(self, job: Job) -> None:
        _require_aware(job.time, "job.time")
        self._jobs.append(job)

    def add(self, at: datetime, budget: BudgetSpec) -> None:
        self._advance(at)
        if budget.id in self._budgets:
            raise ValueError(f"budget id {budget.id} is already used; ids are never reused")
        if budget.period not in PERIODS:
            raise ValueError(f"unknown period {budget.period!r}")
        ZoneInfo(budget.tz)  # fail early on a bad zone name rather than at the first check
        _validate(budget.limit_cu, budget.thresholds)
        spec = replace(budget, limit_cu=float(budget.limit_cu))
        self._budgets[budget.id] = _Budget(spec=spec)

    def check(self, at: datetime, ok: bool = True) -> None:
        self._advance(at)
        if not ok:
            return  # a failed check leaves everything, including last seen spend, untouched
        for budget in self._live_budgets():
            spend = self._spend(budget.spec, at)
            budget.last_seen_spend = spend  # updated even while snoozed, per the contract
            if self._snoozed(budget, at):
                continue
            used = spend / budget.spec.limit_cu * 100
            if budget.is_rolling:
                self._check_rolling(budget, at, used)
            else:
                self._check_calendar(budget, at, used)

    def edit(
        self,
        at: datetime,
        budget_id: int,
        *,
        limit_cu: float | None = None,
        thresholds: frozenset[int] | None = None,
    ) -> None:
        self._advance(at)
        budget = self._live_budget(budget_id)
        if budget is None:
            return
        new_limit = budget.spec.limit_cu if limit_cu is None else float(limit_cu)
        new_thresholds = budget.spec.thresholds if thresholds is None else frozenset(thresholds)
        _validate(new_limit, new_thresholds)
        if (new_limit, new_thresholds) == (budget.spec.limit_cu, budget.spec.thresholds):
            return  # an edit that changes nothing is no event (the contract, clarified)
        budget.spec = replace(budget.spec, limit_cu=new_limit, thresholds=new_thresholds)
        label = self._current_label(budget, at)
        if label is None:
            return
        s0 = budget.last_seen_spend
        budget.passed[label] = {lvl for lvl in new_thresholds if s0 >= lvl / 100 * new_limit}
        self._event(budget, label, ("edited", new_limit, tuple(sorted(new_thresholds))), at)
        if budget.is_rolling and not budget.passed[label]:
            budget.open_episode = None

    def snooze(self, at: datetime, budget_id: int, until: datetime) -> None:
        self._advance(at)
        _require_aware(until, "until")
        budget = self._live_budget(budget_id)
        if budget is None:
            return
        budget.snoozed_until = until
        label = self._current_label(budget, at)
        if label is not None:
            self._event(budget, label, ("snoozed", until), at)

    def unsnooze(self, at: datetime, budget_id: int) -> None:
        self._advance(at)
        budget = self._live_budget(budget_id)
        if budget is None or not self._snoozed(budget, at):
            return
        budget.snoozed_until = None
        label = self._current_label(budget, at)
        if label is not None:
            self._event(budget, label, ("unsnoozed",), at)

    def acknowledge(self, at: datetime, message_id: MessageId, user: str) -> None:
        self._advance(at)
        message = self._messages.get(message_id)
        budget = self._live_budget(message_id[0])
        # A removed budget's messages "stay as they are", so acknowledging one does nothing.
        if message is None or budget is None or message.acknowledged_by is not None:
            return
        message.acknowledged_by = user
        self._event(budget, message_id[1], ("acknowledged", user), at)

    def remove(self, at: datetime, budget_id: int) -> None:
        self._advance(at)
        budget = self._live_budget(budget_id)
        if budget is not None:
            budget.removed = True

    # --- output -------------------------------------------------------------------------------

    def messages(self) -> dict[MessageId, Message]:
        now = self._now
        result: dict[MessageId, Message] = {}
        for message_id, message in self._messages.items():
            top = message.top
            # A snooze that ends by time passing edits nothing, yet must stop being shown.
            if top.snoozed_until is not None and (now is None or not top.snoozed_until > now):
                top = replace(top, snoozed_until=None)
            result[message_id] = Message(
                top=top, replies=tuple(message.replies), first_event=message.first_event
            )
        return result

    # --- rules --------------------------------------------------------------------------------

    def _check_calendar(self, budget: _Budget, at: datetime, used: float) -> None:
        label, _ = calendar_period(budget.spec.period, budget.spec.tz, at)
        passed = budget.passed.setdefault(label, set())  # a new period starts with P empty
        newly = {lvl for lvl in budget.spec.thresholds if used >= lvl and lvl not in passed}
        if newly:
            passed |= newly
            self._event(budget, label, ("level", max(newly)), at)

    def _check_rolling(self, budget: _Budget, at: datetime, used: float) -> None:
        if budget.open_episode is not None:
            passed = budget.passed[budget.open_episode]
            rearmed = {lvl for lvl in passed if used < REARM_FRACTION * lvl}
            if rearmed:
                passed -= rearmed
                self._event(budget, budget.open_episode, ("back_under", min(rearmed)), at)
                if not passed:
                    budget.open_episode = None
        current = set() if budget.open_episode is None else budget.passed[budget.open_episode]
        newly = {lvl for lvl in budget.spec.thresholds if used >= lvl and lvl not in current}
        if not newly:
            return
        if budget.open_episode is None:
            budget.episodes_opened += 1
            budget.open_episode = f"episode-{budget.episodes_opened}"
            budget.passed[budget.open_episode] = set()
        budget.passed[budget.open_episode] |= newly
        self._event(budget, budget.open_episode, ("level", max(newly)), at)

    def _current_label(self, budget: _Budget, at: datetime) -> str | None:
        """Label of the message for the budget's current period, if that message exists."""
        if budget.is_rolling:
            return budget.open_episode
        label, _ = calendar_period(budget.spec.period, budget.spec.tz, at)
        return label if (budget.spec.id, label) in self._messages else None

    def _event(self, budget: _Budget, label: str, event: Event, at: datetime) -> None:
        """Post (first event) or edit + reply (later events), re-rendering the top state."""
        message_id = (budget.spec.id, label)
        message = self._messages.get(message_id)
        if message is None:
            top = self._render(budget, label, None, at)
            self._messages[message_id] = _Message(first_event=event, top=top)
            return
        message.replies.append(event)
        message.top = self._render(budget, label, message.acknowledged_by, at)

    def _render(
        self, budget: _Budget, label: str, acknowledged_by: str | None, at: datetime
    ) -> TopState:
        passed = budget.passed.get(label, set())
        return TopState(
            highest_level=max(passed) if passed else None,
            limit_cu=budget.spec.limit_cu,
            thresholds=tuple(sorted(budget.spec.thresholds)),
            acknowledged_by=acknowledged_by,
            snoozed_until=budget.snoozed_until if self._snoozed(budget, at) else None,
        )

    def _spend(self, spec: BudgetSpec, at: datetime) -> float:
        if spec.period == ROLLING:
            start = at - ROLLING_WINDOW
        else:
            _, start = calendar_period(spec.period, spec.tz, at)
        in_window = [job for job in self._jobs if start <= job.time < at]
        return sum((job.cu for job in in_window if spec.scope in job.scope_keys), 0.0)

    # --- plumbing -----------------------------------------------------------------------------

    @staticmethod
    def _snoozed(budget: _Budget, at: datetime) -> bool:
        return budget.snoozed_until is not None and budget.snoozed_until > at

    def _live_budgets(self) -> list[_Budget]:
        return [b for b in self._budgets.values() if not b.removed]

    def _live_budget(self, budget_id: int) -> _Budget | None:
        budget = self._budgets.get(budget_id)
        return None if budget is None or budget.removed else budget

    def _advance(self, at: datetime) -> None:
        _require_aware(at, "at")
        if self._now is not None and at < self._now:
            raise ValueError(f"the clock went backwards: {at} < {self._now}")
        self._now = at


def _validate(limit_cu: float, thresholds: frozenset[int]) -> None:
    if not limit_cu > 0:
        raise ValueError(f"limit must be > 0, got {limit_cu!r}")
    bad = [lvl for lvl in thresholds if not (isinstance(lvl, int) and 1 <= lvl <= 1000)]
    if bad:
        raise ValueError(f"thresholds must be ints in 1..1000, got {sorted(bad)!r}")
